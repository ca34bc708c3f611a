import Crypto
import Foundation

/// An ACME account key and the requests it signs (RFC 8555 §6.2): JSON Web Signatures (RFC 7515)
/// with ES256 over P-256, in the flattened JSON serialization. Hand-written: no package of the
/// mirror signs JWS with swift-crypto keys for ACME (jwt-kit makes JWTs, not ACME's JWS).
/// `@unchecked`: swift-crypto's key is not marked `Sendable` on Linux; it is an immutable value
/// that this type only reads (signing does not change it).
struct AccountKey: @unchecked Sendable {
    let key: P256.Signing.PrivateKey

    /// The public key as a JWK (RFC 7517), members in the order RFC 7638 hashes them.
    var jwk: [String: String] {
        let point = key.publicKey.x963Representation // 0x04 ‖ x ‖ y
        return ["crv": "P-256", "kty": "EC", "x": Base64URL.encode(point.dropFirst().prefix(32)), "y": Base64URL.encode(point.suffix(32))]
    }

    /// RFC 7638 thumbprint: SHA-256 of the required members, sorted, without whitespace.
    var thumbprint: String {
        let jwk = jwk
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(jwk["x"] ?? "")","y":"\#(jwk["y"] ?? "")"}"#
        return Base64URL.encode(SHA256.hash(data: Data(canonical.utf8)))
    }

    /// RFC 8555 §8.1: what a challenge response must show.
    func keyAuthorization(token: String) -> String {
        token + "." + thumbprint
    }

    /// A signed request body. `payload` nil is POST-as-GET (an empty payload, §6.3); `account`
    /// is the account URL (`kid`), nil for the requests that create or find the account (`jwk`).
    func sign(payload: Data?, url: String, nonce: String, account: String?) throws -> Data {
        var header: [String: Any] = ["alg": "ES256", "nonce": nonce, "url": url]
        if let account { header["kid"] = account } else { header["jwk"] = jwk }
        let protected = Base64URL.encode(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]))
        let body = payload.map(Base64URL.encode) ?? ""
        let signature = try key.signature(for: Data((protected + "." + body).utf8))
        return try JSONSerialization.data(withJSONObject: ["protected": protected, "payload": body,
                                                           "signature": Base64URL.encode(signature.rawRepresentation)],
                                          options: [.sortedKeys, .withoutEscapingSlashes])
    }
}

/// Base64 with the URL alphabet and no padding (RFC 7515 §2).
enum Base64URL {
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
