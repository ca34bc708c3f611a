import PagiConfig
import PagiCore
import Synchronization

/// `request_id`: keeps a sane incoming id (1–128 characters of letters, digits and `-_.:+=/@`),
/// or makes one (`RequestIDs`); puts it on the request (templates, the access log, upstreams) and on
/// the response.
struct RequestIDMiddleware: Middleware {
    let header: String
    private let ids = RequestIDs()

    init(_ options: RequestIDOptions) { header = options.header }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        let id: String
        if let incoming = request.headers[header], Self.isAcceptable(incoming) {
            id = incoming
        } else {
            id = ids.next()
            request.headers.set(header, id)
        }
        request.context.requestID = id
        var response = next.respond(to: &request)
        response.apply(SetHeader(name: header, value: id))
        return response
    }

    static func isAcceptable(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || "-_.:+=/@".utf8.contains(byte)
        }
    }

}

/// Sets one response field.
struct SetHeader: ResponseEdit {
    let name: String
    let value: String
    func apply(to response: inout Response) { response.headers.set(name, value) }
}

/// Request ids: 32 hex digits (the length of nginx's `$request_id`), 64 random bits drawn once per
/// middleware and a 64-bit counter, so ids are unique without a system call per request (the
/// system's random source costs a `getrandom(2)` each time).
final class RequestIDs: Sendable {
    private let prefix: [UInt8]
    private let counter = Atomic<UInt64>(0)

    init() {
        prefix = Self.hexDigits(UInt64.random(in: .min ... .max))
    }

    func next() -> String {
        let count = counter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for (index, digit) in (prefix + Self.hexDigits(count)).enumerated() { buffer[index] = digit }
            return 32
        }
    }

    private static let digits = Array("0123456789abcdef".utf8)

    private static func hexDigits(_ value: UInt64) -> [UInt8] {
        (0..<16).map { digits[Int((value >> (60 - 4 * UInt64($0))) & 0xF)] }
    }
}
