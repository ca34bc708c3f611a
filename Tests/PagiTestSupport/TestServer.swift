import Foundation
import Logging
import NIOCore
import PagiBuiltins
import PagiConfig
import PagiCore
import PagiEngine

/// A real server on 127.0.0.1 port 0, built from YAML exactly as the CLI builds it.
public final class TestServer: @unchecked Sendable {
    // @unchecked: `stopped` is only touched by the test thread and one shutdown thread, never at once.
    public let server: HTTPServer
    public let port: Int
    public let directory: URL
    private var stopped = false

    /// `yaml` may use `{{dir}}` for the test directory; `listen` is forced to 127.0.0.1:0, a TLS
    /// listener with `tls`.
    public init(yaml: String, directory: URL, tls: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        self.directory = directory
        let config = try Self.load(yaml: yaml, directory: directory, tls: tls)
        let table = try Builtins.compile(config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = try HTTPServer(config: config, table: table, logger: logger)
        let addresses = try server.start()
        guard let port = addresses.first?.port else { throw EngineError("no port") }
        self.port = port
    }

    /// A server with no access log and one host, `localhost`, whose routes are `routes`: YAML list
    /// items written from column 0 (`- path: /api/` …).
    public convenience init(routes: String, directory: URL) throws {
        let indented = routes.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n")
        try self.init(yaml: "server:\n  access_log: {to: off}\nhosts:\n  - names: [localhost]\n    routes:\n" + indented, directory: directory)
    }

    /// The configuration `yaml` describes, served on 127.0.0.1:0 (a TLS listener with `tls`).
    public static func load(yaml: String, directory: URL, tls: Bool = false) throws -> Config {
        let path = directory.appendingPathComponent("config.yaml").path
        try yaml.replacingOccurrences(of: "{{dir}}", with: directory.path).write(toFile: path, atomically: true, encoding: .utf8)
        var config = try ConfigLoader.load(path: path)
        var listener = ListenConfig(address: .tcp(host: "127.0.0.1", port: 0))
        listener.tls = tls
        config.server.listen = [listener]
        if config.server.threads == nil { config.server.threads = 2 }
        return config
    }

    /// Applies `yaml` as a reload does (SIGHUP).
    public func reload(yaml: String, tls: Bool = false) throws {
        let config = try Self.load(yaml: yaml, directory: directory, tls: tls)
        _ = try server.reload(config, table: try Builtins.compile(config))
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        server.shutdown()
    }

    /// Starts the graceful shutdown on another thread (it blocks until the drain ends); the
    /// semaphore is signalled when it is done.
    public func stopInBackground() -> DispatchSemaphore {
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            stop()
            stopped.signal()
        }
        return stopped
    }

    deinit { stop() }
}

/// A scratch directory removed when the test ends.
public func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("pagi-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.resolvingSymlinksInPath()
}

public func writeFile(_ dir: URL, _ relative: String, _ contents: [UInt8]) throws {
    let url = dir.appendingPathComponent(relative)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(contents).write(to: url)
}

public func writeFile(_ dir: URL, _ relative: String, _ text: String) throws {
    try writeFile(dir, relative, Array(text.utf8))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
public func deterministicBytes(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[i] = UInt8(truncatingIfNeeded: state)
    }
    return bytes
}
