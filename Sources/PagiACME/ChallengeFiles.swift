import Crypto
import Foundation
import PagiConfig
import SwiftASN1
import X509

/// Publishes a challenge response in the storage, where every serving process finds it
/// (`ACMEStorage`): the key authorization for http-01, a self-signed certificate carrying its
/// digest for tls-alpn-01 (RFC 8737 §3). Neither is secret — the CA fetches them in the open.
struct ChallengeFiles {
    let file: String

    static func publish(_ acme: ACMEConfig, name: String, token: String, keyAuthorization: String) throws -> ChallengeFiles {
        let file: String?
        let text: String
        switch acme.challenge {
        case .http01:
            file = ACMEStorage.http01File(storage: acme.storage, token: Substring(token))
            text = keyAuthorization
        case .tlsALPN01:
            file = ACMEStorage.tlsALPN01File(storage: acme.storage, name: name)
            text = try challengeCertificate(for: name, keyAuthorization: keyAuthorization)
        }
        guard let file else { throw ACMEError("the ACME server sent a challenge for '\(name)' that cannot be published (token '\(token)')") }
        try StorageFiles.prepare(acme)
        try StorageFiles.write(text, to: file, mode: 0o644)
        return ChallengeFiles(file: file)
    }

    func remove() {
        unlink(file)
    }

    /// id-pe-acmeIdentifier (RFC 8737 §6.1).
    private static let acmeIdentifier: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]

    /// A certificate for `name` only, with the critical acmeIdentifier extension holding the
    /// SHA-256 of the key authorization, followed by its throw-away key.
    private static func challengeCertificate(for name: String, keyAuthorization: String) throws -> String {
        let key = P256.Signing.PrivateKey()
        var digest = DER.Serializer()
        try digest.serialize(ASN1OctetString(contentBytes: ArraySlice(SHA256.hash(data: Data(keyAuthorization.utf8)))))
        let subject = try DistinguishedName { CommonName("pagi-serve ACME challenge") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(7 * 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName(name)])
                Certificate.Extension(oid: acmeIdentifier, critical: true, value: ArraySlice(digest.serializedBytes))
            },
            issuerPrivateKey: .init(key))
        return try certificate.serializeAsPEM().pemString + "\n" + key.pemRepresentation + "\n"
    }
}
