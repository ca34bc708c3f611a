import PagiConfig
import PagiCore

/// `request_id`: keeps a sane incoming id (1–128 characters of letters, digits and `-_.:+=/@`),
/// or makes one; puts it on the request (templates, the access log, upstreams) and on the response.
struct RequestIDMiddleware: Middleware {
    let header: String

    init(_ options: RequestIDOptions) { header = options.header }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        let id: String
        if let incoming = request.headers[header], Self.isAcceptable(incoming) {
            id = incoming
        } else {
            id = Self.makeID()
            request.headers.set(header, id)
        }
        request.context.requestID = id
        let header = header
        return next.respond(to: &request).edited { $0.headers.set(header, id) }
    }

    static func isAcceptable(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || "-_.:+=/@".utf8.contains(byte)
        }
    }

    /// 128 random bits as 32 hex digits (like nginx's `$request_id`).
    static func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = (generator.next() as UInt64, generator.next() as UInt64)
        return hex(value.0) + hex(value.1)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
