import NIOCore
import CFuzzerDriver
import PagiCore
@testable import PagiEngine

/// The HTTP/1.1 request parser and the request validation behind it, on arbitrary bytes: fed
/// whole and in small pieces (the first byte picks the piece size), every head validated as
/// the engine would. Finds crashes, hangs and unbounded growth; a thrown ProtocolError is the
/// expected answer to bad input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestParser(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let first = bytes.first else { return 0 }
    let limits = ParserLimits(headerBytes: 4096, uriBytes: 1024, headerCount: 50, bodyBytes: 1 << 16)
    let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
    for pieceSize in [bytes.count, Int(first % 16) + 1] {
        var parser = RequestParser(limits: limits)
        var buffer = ByteBuffer()
        var offset = 1
        var bodyBytes = 0
        parsing: while offset < bytes.count || buffer.readableBytes > 0 {
            if offset < bytes.count {
                let end = min(bytes.count, offset + pieceSize)
                buffer.writeBytes(bytes[offset..<end])
                offset = end
            }
            while true {
                let event: ParseEvent?
                do {
                    event = try parser.next(&buffer)
                } catch {
                    precondition((400...505).contains(error.status), "unexpected status \(error.status)")
                    break parsing
                }
                guard let event else { break }
                switch event {
                case .head(let head):
                    _ = try? RequestValidation.makeRequest(head, clientAddress: "127.0.0.1", knownMethods: methods)
                case .body(let chunk):
                    bodyBytes += chunk.readableBytes
                    precondition(bodyBytes <= limits.bodyBytes, "body over the limit was passed on")
                case .end:
                    bodyBytes = 0
                }
            }
            if offset >= bytes.count { break }
        }
    }
    return 0
}

/// The entry point SwiftPM's link step names (`main` is aliased to it): runs libFuzzer's driver.
@_cdecl("FuzzRequestParser_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzRequestParser(data, size)
    }
}
