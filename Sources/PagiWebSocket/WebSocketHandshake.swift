import Crypto
import Foundation
import PagiCore

/// The server's side of the opening handshake (RFC 6455 §4.2): checks the upgrade request and
/// either refuses it with an HTTP status or says what was agreed.
enum WebSocketHandshake {
    struct Agreement {
        var acceptKey: String
        var subprotocol: String?
        var deflate: DeflateParameters?

        /// The 101 response's fields.
        var headers: HeaderFields {
            var headers: HeaderFields = ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": acceptKey]
            if let subprotocol { headers.add("Sec-WebSocket-Protocol", subprotocol) }
            if let deflate { headers.add("Sec-WebSocket-Extensions", deflate.responseValue) }
            return headers
        }
    }

    enum Outcome {
        case accept(Agreement)
        case refuse(Response)
    }

    private static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    static func evaluate(_ request: Request, options: WebSocketOptions) -> Outcome {
        guard request.method == "GET" else { return .refuse(Response(status: 405, headers: ["Allow": "GET"])) }
        let headers = request.headers
        guard request.versionMajor == 1 && request.versionMinor >= 1,
              tokens(headers, "Upgrade").contains("websocket"),
              tokens(headers, "Connection").contains("upgrade"),
              let key = headers["Sec-WebSocket-Key"]?.trimmingOWS, isValidKey(key),
              let version = headers["Sec-WebSocket-Version"]?.trimmingOWS
        else { return .refuse(Response(status: 400)) }
        guard version == "13" else {
            return .refuse(Response(status: 426, headers: ["Sec-WebSocket-Version": "13"]))
        }
        if !options.origins.isEmpty {
            // A listed origin only: a request without `Origin` is not from an allowed page either.
            guard let origin = headers["Origin"]?.trimmingOWS.lowercased(), options.origins.contains(origin) else {
                return .refuse(Response(status: 403))
            }
        }
        let offered = headers.values("Sec-WebSocket-Protocol").flatMap { $0.split(separator: ",").map(\.trimmingOWS) }
        return .accept(Agreement(
            acceptKey: acceptKey(for: key),
            subprotocol: offered.first { options.subprotocols.contains($0) },
            deflate: options.compression ? PerMessageDeflateNegotiation.negotiate(headers.values("Sec-WebSocket-Extensions")) : nil))
    }

    /// `Sec-WebSocket-Accept`: base64(SHA-1(key + GUID)) (§4.2.2).
    static func acceptKey(for key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + acceptGUID).utf8))).base64EncodedString()
    }

    /// A base64 encoding of 16 bytes (§4.1).
    private static func isValidKey(_ key: String) -> Bool {
        key.utf8.count == 24 && Data(base64Encoded: key)?.count == 16
    }

    /// Lower-cased comma-separated tokens of every `name` field.
    private static func tokens(_ headers: HeaderFields, _ name: String) -> [String] {
        headers.values(name).flatMap { $0.lowercased().split(separator: ",").map(\.trimmingOWS) }
    }
}
