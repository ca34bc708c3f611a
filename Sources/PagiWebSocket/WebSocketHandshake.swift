import Crypto
import Foundation
import PagiCore

/// The server's side of the opening handshake (RFC 6455 §4.2): checks the upgrade request and
/// either refuses it with an HTTP status or says what was agreed.
enum WebSocketHandshake {
    struct Agreement {
        /// Nil over HTTP/2 (RFC 8441 §5: no key, no accept, no `Upgrade`).
        var acceptKey: String?
        var subprotocol: String?
        var deflate: DeflateParameters?

        /// The status that accepts: 101 on HTTP/1.1, 200 for an HTTP/2 extended CONNECT.
        var status: Int { acceptKey == nil ? 200 : 101 }

        /// The accepting response's fields.
        var headers: HeaderFields {
            var headers = HeaderFields()
            if let acceptKey { headers = ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": acceptKey] }
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
        // Over HTTP/2 (RFC 8441), the extended CONNECT itself asks for the protocol: no key to prove.
        let overHTTP2 = request.context.isExtendedConnect
        let key = headers["Sec-WebSocket-Key"]?.trimmingOWS
        guard overHTTP2 || request.versionMajor == 1 && request.versionMinor >= 1
                && tokens(headers, "Upgrade").contains("websocket") && tokens(headers, "Connection").contains("upgrade")
                && key.map(isValidKey) == true,
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
            acceptKey: overHTTP2 ? nil : key.map(acceptKey(for:)),
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
