import CFuzzerDriver
import PagiConfig

/// The config loader on arbitrary text: every input must end in a Config or a ConfigError with
/// diagnostics that have positions, never a crash or a hang. No file is read (includes and
/// static roots point nowhere), and `${VAR}` sees a fixed environment.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigLoader(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let config = try ConfigLoader.load(yaml: text, fileName: "fuzz.yaml", environment: ["PORT": "8080"])
        precondition(!config.hosts.isEmpty, "a config without hosts was accepted")
    } catch let error as ConfigError {
        precondition(!error.diagnostics.isEmpty, "an error without diagnostics")
    } catch {
        preconditionFailure("unexpected error type \(type(of: error))")
    }
    return 0
}

/// The entry point SwiftPM's link step names (`main` is aliased to it): runs libFuzzer's driver.
@_cdecl("FuzzConfigLoader_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzConfigLoader(data, size)
    }
}
