import Crypto
import Foundation
import PagiConfig
import SwiftASN1
import X509

/// One certificate order, from the new order to the chain (RFC 8555 §7.4): each authorization
/// proved by the configured challenge, published where every serving process answers it
/// (`ChallengeFiles`), then a CSR for a fresh P-256 key.
struct CertificateOrder {
    let client: ACMEClient
    let acme: ACMEConfig
    let names: [String]
    /// How long the server may take to validate or issue before the attempt counts as failed.
    var patience: TimeInterval = 180

    /// The chain (PEM, leaf first) and its key (PEM, PKCS #8).
    func obtain() async throws -> (chain: String, key: String) {
        let created = try await client.post(try await client.endpoints().newOrder,
                                            payload: ["identifiers": names.map { ["type": "dns", "value": $0] }])
        guard let orderURL = created.location else { throw ACMEError("the ACME server created no order (no Location)") }
        var order = try created.json()
        for authorization in order["authorizations"] as? [String] ?? [] { try await authorize(authorization) }
        guard let finalize = order["finalize"] as? String else { throw ACMEError("the order has no finalize URL") }
        let key = P256.Signing.PrivateKey()
        order = try await client.post(finalize, payload: ["csr": Base64URL.encode(try signingRequest(key: key))]).json()
        order = try await poll(orderURL, from: order)
        guard order["status"] as? String == "valid", let certificate = order["certificate"] as? String else {
            throw ACMEError("the order ended \(order["status"] as? String ?? "without a status")\(Self.problem(in: order))")
        }
        let chain = try await client.post(certificate, payload: nil, accept: "application/pem-certificate-chain").body
        guard let text = String(data: chain, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") else {
            throw ACMEError("the certificate downloaded from \(certificate) is not PEM")
        }
        return (text, key.pemRepresentation + "\n")
    }

    /// Proves control of one name, unless the server already holds a valid authorization for it.
    private func authorize(_ url: String) async throws {
        let authorization = try await client.post(url, payload: nil).json()
        if authorization["status"] as? String == "valid" { return }
        guard let name = (authorization["identifier"] as? [String: Any])?["value"] as? String,
              let challenge = (authorization["challenges"] as? [[String: Any]])?.first(where: { $0["type"] as? String == acme.challenge.rawValue }),
              let challengeURL = challenge["url"] as? String, let token = challenge["token"] as? String else {
            throw ACMEError("the ACME server offers no \(acme.challenge.rawValue) challenge for \(url)")
        }
        let keyAuthorization = client.key.keyAuthorization(token: token)
        let published = try ChallengeFiles.publish(acme, name: name, token: token, keyAuthorization: keyAuthorization)
        defer { published.remove() }
        // §7.5.1: an empty object tells the server the challenge is ready.
        _ = try await client.post(challengeURL, payload: [:])
        let outcome = try await poll(url, from: authorization)
        guard outcome["status"] as? String == "valid" else {
            let failed = (outcome["challenges"] as? [[String: Any]])?.first { $0["type"] as? String == acme.challenge.rawValue } ?? [:]
            throw ACMEError("\(acme.challenge.rawValue) validation of \(name) failed\(Self.problem(in: failed))")
        }
    }

    /// Asks again (POST-as-GET) while an authorization is `pending` or a finalized order
    /// `processing`, as often as the
    /// server's `Retry-After` says (at most every 10 s), for `patience` seconds at most.
    private func poll(_ url: String, from object: [String: Any]) async throws -> [String: Any] {
        var object = object
        var delay: TimeInterval = 1
        let deadline = Date().addingTimeInterval(patience)
        while ["pending", "processing"].contains(object["status"] as? String ?? ""), Date() < deadline {
            try await Task.sleep(for: .seconds(delay))
            let reply = try await client.post(url, payload: nil)
            object = try reply.json()
            delay = min(10, reply.headers.first(name: "Retry-After").flatMap(TimeInterval.init) ?? 1)
        }
        return object
    }

    /// A CSR for `names` (RFC 2986), their names in subjectAltName; the common name only when it
    /// fits its 64 characters, as CAs take names from the extension.
    private func signingRequest(key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let subject = try DistinguishedName {
            if let first = names.first, first.count <= 64 { CommonName(first) }
        }
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(names.map { .dnsName($0) }) }
        let request = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: .init(key),
            attributes: try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256)
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }

    /// `: detail` of the problem document an order or challenge carries in `error`.
    private static func problem(in object: [String: Any]) -> String {
        guard let error = object["error"] as? [String: Any] else { return "" }
        return ": " + ((error["detail"] as? String) ?? (error["type"] as? String) ?? "no detail")
    }
}
