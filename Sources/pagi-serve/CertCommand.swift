import ArgumentParser
import Crypto
import Foundation
import PagiConfig
import SwiftASN1
import X509

/// `pagi-serve cert NAME...` (docs/tls.md): a self-signed certificate and its key for local HTTPS,
/// so that trying TLS takes two commands. swift-certificates signs it with a P-256 key from
/// swift-crypto. A server certificate that signs itself (not a CA: Firefox, rustls and pyca refuse
/// a CA certificate used for a server), so a client told to trust the file (`curl --cacert
/// NAME.crt`) verifies the server with it.
struct Cert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a self-signed certificate and key for local HTTPS: NAME.crt and NAME.key (mode 0600).")
    @Argument(help: "The host names and IP addresses the certificate is for; the first names the files.") var names: [String]
    @Option(help: "The directory to write into.") var out = "."
    @Option(help: "How many days the certificate is valid (1–825).") var days = 90
    @Flag(help: "Replace files that already exist.") var force = false

    func validate() throws {
        guard !names.isEmpty else { throw ValidationError("give at least one host name, e.g. pagi-serve cert localhost 127.0.0.1") }
        guard (1...825).contains(days) else { throw ValidationError("--days must be between 1 and 825") }
        for name in names where Self.ipAddressBytes(name) == nil && !Self.isHostName(name) {
            throw ValidationError("'\(name)' is neither a host name nor an IP address")
        }
    }

    func run() throws {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            CLI.printErr("error: cannot create the directory '\(out)': \(error.localizedDescription)")
            Foundation.exit(1)
        }
        let base = URL(fileURLWithPath: out).appendingPathComponent(names[0].replacingOccurrences(of: "*", with: "_wildcard"))
        let certificateFile = base.appendingPathExtension("crt").path
        let keyFile = base.appendingPathExtension("key").path
        for file in [certificateFile, keyFile] where !force && FileManager.default.fileExists(atPath: file) {
            CLI.printErr("error: \(file) exists (--force replaces it)")
            Foundation.exit(1)
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(names[0]) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names.map { name in
                    Self.ipAddressBytes(name).map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) } ?? .dnsName(name)
                })
            },
            issuerPrivateKey: .init(key))
        do {
            try Self.write(try certificate.serializeAsPEM().pemString + "\n", to: certificateFile, mode: 0o644)
            try Self.write(key.pemRepresentation + "\n", to: keyFile, mode: 0o600)
        } catch {
            CLI.printErr("error: \(error)")
            Foundation.exit(1)
        }
        print("""
            wrote \(certificateFile) and \(keyFile) (valid \(days) days for \(names.joined(separator: ", ")))
            in the configuration:
              server:
                listen: ["127.0.0.1:8080", {address: "127.0.0.1:8443", tls: true}]
              tls: {cert: \(certificateFile), key: \(keyFile)}
            then: curl --cacert \(certificateFile) https://\(names[0].hasPrefix("*.") ? "www" + names[0].dropFirst() : names[0]):8443/
            """)
    }

    /// Written whole with its mode from the start: a key is never readable by others, even briefly.
    private static func write(_ text: String, to path: String, mode: mode_t) throws {
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard Glibc.write(descriptor, bytes, bytes.count) == bytes.count else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }

    private static func ipAddressBytes(_ text: String) -> [UInt8]? {
        NetworkSyntax.ipv4Bytes(Substring(text)) ?? NetworkSyntax.ipv6Bytes(Substring(text))
    }

    private static func isHostName(_ text: String) -> Bool {
        NetworkSyntax.isHostName(text.hasPrefix("*.") ? Substring(text).dropFirst(2) : Substring(text))
    }
}
