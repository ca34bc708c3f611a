import Foundation

/// The layout of `tls.acme.storage` (docs/tls.md, *Automatic certificates*), shared by the ACME
/// client that writes it and the engine that reads it:
///
///     <storage>/                                     0711 (workers without privileges reach challenges/ only)
///     <storage>/<issuer>/                            0700, one per ACME directory
///     <storage>/<issuer>/account.key                 0600
///     <storage>/<issuer>/<first name>/cert.pem       0600, the chain
///     <storage>/<issuer>/<first name>/key.pem        0600
///     <storage>/challenges/http-01/<token>           0644, the key authorization (public by design)
///     <storage>/challenges/tls-alpn-01/<name>.pem    0644, a challenge certificate and its throw-away key
///
/// Certificates are kept per issuer, as Caddy does: moving from a test CA to a production one
/// obtains new certificates rather than serving the test ones.
public enum ACMEStorage {
    /// `<storage>/<issuer>`: the directory URL's host, port and path, e.g. `acme-v02.api.letsencrypt.org-directory`.
    public static func issuerDirectory(_ acme: ACMEConfig) -> String {
        let url = URL(string: acme.directory)
        let parts = [url?.host ?? "acme", url?.port.map(String.init)].compactMap { $0 } + (url?.path.split(separator: "/").map(String.init) ?? [])
        let name = String(parts.joined(separator: "-").map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "-" })
        return acme.storage + "/" + name
    }

    public static func accountKey(_ acme: ACMEConfig) -> String {
        issuerDirectory(acme) + "/account.key"
    }

    /// The certificate and key files for `names` (named after the first).
    public static func certificateFiles(_ acme: ACMEConfig, names: [String]) -> (cert: String, key: String) {
        let directory = issuerDirectory(acme) + "/" + (names.first ?? "default")
        return (directory + "/cert.pem", directory + "/key.pem")
    }

    public static func challengeDirectory(storage: String) -> String {
        storage + "/challenges"
    }

    /// Where the key authorization of an HTTP-01 `token` is published; nil for a token that is not
    /// base64url (RFC 8555 §8.3), which could otherwise name a path elsewhere.
    public static func http01File(storage: String, token: Substring) -> String? {
        guard !token.isEmpty, token.count <= 256, token.utf8.allSatisfy(isBase64URL) else { return nil }
        return challengeDirectory(storage: storage) + "/http-01/" + token
    }

    /// Where the TLS-ALPN-01 challenge certificate for `name` is published; nil for a name that
    /// is not a plain DNS name.
    public static func tlsALPN01File(storage: String, name: String) -> String? {
        let name = name.lowercased()
        guard !name.isEmpty, name.count <= 253, !name.hasPrefix("."),
              name.utf8.allSatisfy({ isBase64URL($0) && $0 != UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) else { return nil }
        return challengeDirectory(storage: storage) + "/tls-alpn-01/" + name + ".pem"
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"): return true
        default: return false
        }
    }
}
