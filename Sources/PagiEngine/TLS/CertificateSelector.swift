import Foundation
import NIOSSL
import PagiConfig
import PagiCore

/// The TLS settings one listener offers, chosen per connection by the name the client asks for
/// (SNI) — docs/tls.md. A listener's own `tls` mapping serves every name; otherwise the host the
/// name selects (exact names, then wildcards, as for `Host`) offers its certificate, and a name
/// no host with a certificate claims — or no name at all — gets the top-level certificate, then
/// the default host's, then the first host's that has one.
///
/// Built whole when the configuration is applied (start, reload): every certificate and key is
/// read and checked then, so a file that cannot be used is reported with its place in the
/// configuration, and a reload that fails keeps the certificates in force.
public struct CertificateSelector: Sendable {
    /// One set of TLS settings, as a handshake uses it.
    struct Offer: Sendable {
        /// Nil for an ACME certificate not obtained yet: the handshake is refused with an alert.
        let context: NIOSSLContext?
        /// Client certificates are asked for and verified (`client_ca`).
        let verifiesClients: Bool
        /// Tells offers apart: two names served with the same settings share one.
        let id: Int
    }

    private let hosts: HostSelector
    /// Per host (by index), its settings when it has its own.
    private let hostOffers: [Offer?]
    private let fallback: Offer
    /// The ACME storages whose TLS-ALPN-01 challenge certificates this listener presents.
    private let tlsALPNChallenges: [String]

    /// Several settings are offered and one of them verifies client certificates: only then can a
    /// request ask for a host its connection's handshake would not have chosen (`TLSSession.misdirects`).
    let canMisdirect: Bool

    /// Nil for a listener that does not serve TLS.
    public init?(for listener: ListenConfig, in config: Config) throws(EngineError) {
        guard listener.tls else { return nil }
        tlsALPNChallenges = Set(config.hosts.compactMap { host in host.tls?.acme.flatMap { $0.challenge == .tlsALPN01 ? $0.storage : nil } }).sorted()
        // ALPN offers `h2` (docs/http2.md) with `server.http2` and the listener's `http2`.
        let http2 = config.server.http2 && listener.http2
        var made: [TLSConfig: Offer] = [:]
        func context(_ settings: TLSConfig) throws(EngineError) -> Offer {
            if let known = made[settings] { return known }
            let offer = Offer(context: try Self.context(settings, http2: http2, texts: config.sources), verifiesClients: settings.clientCA != nil, id: made.count)
            made[settings] = offer
            return offer
        }
        let defaultIndex = config.hosts.firstIndex(where: \.isDefault) ?? 0
        hosts = HostSelector(names: config.hosts.map { $0.names.map { $0.lowercased() } }, defaultHost: defaultIndex)
        if let own = listener.tlsSettings {
            hostOffers = []
            fallback = try context(own)
            canMisdirect = false
            return
        }
        var perHost: [Offer?] = []
        for host in config.hosts {
            perHost.append(try host.tls.map { settings throws(EngineError) in try context(settings) })
        }
        hostOffers = perHost
        let defaultHost = config.hosts.indices.contains(defaultIndex) ? config.hosts[defaultIndex].tls : nil
        guard let settings = config.tls ?? defaultHost ?? config.hosts.lazy.compactMap(\.tls).first else {
            throw EngineError("\(Self.place(listener.location))this listener serves TLS but no certificate is configured")
        }
        fallback = try context(settings)
        canMisdirect = made.count > 1 && made.values.contains(where: \.verifiesClients)
    }

    /// Some host obtains its certificate by TLS-ALPN-01: client hellos are checked for `acme-tls/1`.
    var answersTLSALPNChallenges: Bool { !tlsALPNChallenges.isEmpty }

    /// The TLS-ALPN-01 challenge certificate published for `serverName` (RFC 8737 §3), made into a
    /// context that speaks `acme-tls/1` only; nil when none is pending. Read from the storage, so
    /// every worker answers, whichever process runs the ACME client; handshakes asking for
    /// `acme-tls/1` are rare.
    func challengeContext(for serverName: String) -> NIOSSLContext? {
        for storage in tlsALPNChallenges {
            guard let file = ACMEStorage.tlsALPN01File(storage: storage, name: serverName),
                  let pem = FileManager.default.contents(atPath: file),
                  let chain = try? NIOSSLCertificate.fromPEMBytes(Array(pem)), !chain.isEmpty,
                  let key = try? NIOSSLPrivateKey(bytes: Array(pem), format: .pem) else { continue }
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                        privateKey: .privateKey(key))
            configuration.applicationProtocols = ["acme-tls/1"]
            return try? NIOSSLContext(configuration: configuration)
        }
        return nil
    }

    /// What a connection that asked for `serverName` (nil: it named none) is served with.
    func offer(for serverName: String?) -> Offer {
        guard let serverName, !hostOffers.isEmpty else { return fallback }
        let (host, reason) = hosts.select(serverName)
        guard reason != .defaultHost, let own = hostOffers[host] else { return fallback }
        return own
    }

    /// TLS 1.2 suites: forward secret (ECDHE) AEADs only — Mozilla's "intermediate" list without
    /// DHE. swift-nio-ssl's default also accepts RSA key transport and CBC suites, which sslyze
    /// flags (conformance/tls-scan.py). TLS 1.3's suites are all of this kind and not configurable.
    private static let tls12Ciphers: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// The context of `settings`; for an ACME certificate, nil until it is in the storage (or while
    /// what is there cannot be used: the ACME client replaces it).
    private static func context(_ settings: TLSConfig, http2: Bool, texts: [String: String]) throws(EngineError) -> NIOSSLContext? {
        guard settings.acme != nil else { return try makeContext(settings, http2: http2, texts: texts) }
        guard texts[settings.cert] != nil || FileManager.default.fileExists(atPath: settings.cert) else { return nil }
        return try? makeContext(settings, http2: http2, texts: texts)
    }

    /// Reads the certificate chain, key and client CA of `settings` into a context.
    /// `texts`: the files' contents as the loader read them (`Config.sources`; a worker's come from
    /// its supervisor, which may read what the worker's user cannot); a file not among them is read here.
    private static func makeContext(_ settings: TLSConfig, http2: Bool, texts: [String: String]) throws(EngineError) -> NIOSSLContext {
        func bytes(_ path: String) throws -> [UInt8] {
            if let text = texts[path] { return Array(text.utf8) }
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(bytes(settings.cert))
        } catch {
            throw EngineError("\(place(settings.certLocation))cannot use the certificate '\(settings.cert)': \(describe(error))")
        }
        guard !chain.isEmpty else {
            throw EngineError("\(place(settings.certLocation))'\(settings.cert)' holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: bytes(settings.key), format: .pem)
        } catch {
            throw EngineError("\(place(settings.keyLocation))cannot use the private key '\(settings.key)': \(describe(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                    privateKey: .privateKey(key))
        configuration.minimumTLSVersion = settings.minVersion == "1.3" ? .tlsv13 : .tlsv12
        configuration.cipherSuiteValues = Self.tls12Ciphers
        configuration.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        if let clientCA = settings.clientCA {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(bytes(clientCA)))
            } catch {
                throw EngineError("\(place(settings.clientCALocation))cannot use the CA bundle '\(clientCA)': \(describe(error))")
            }
            configuration.certificateVerification = settings.clientAuth == .optional ? .optionalVerification : .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL checks here that the key belongs to the certificate, and reads the CA bundle.
            throw EngineError("\(place(settings.location))cannot use the certificate '\(settings.cert)' with the key '\(settings.key)'\(settings.clientCA.map { " and the client CA '\($0)'" } ?? ""): \(describe(error))")
        }
    }

    private static func place(_ location: SourceLocation?) -> String {
        location.map { "\($0): " } ?? ""
    }

    /// BoringSSL's reasons, without the Swift type names around them.
    private static func describe(_ error: any Error) -> String {
        if let ssl = error as? NIOSSLError, case .failedToLoadCertificate = ssl { return "not a PEM certificate" }
        if let ssl = error as? NIOSSLError, case .failedToLoadPrivateKey = ssl { return "not a PEM private key" }
        return "\(error)"
    }
}
