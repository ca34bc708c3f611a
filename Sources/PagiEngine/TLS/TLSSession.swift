import NIOSSL

/// What the handshake of one TLS connection chose, for the requests that follow on it
/// (docs/tls.md). Lives on the connection's event loop.
final class TLSSession {
    let certificates: CertificateSelector
    /// Set once the client's hello named (or did not name) a server.
    private(set) var negotiated: CertificateSelector.Offer?

    init(certificates: CertificateSelector) {
        self.certificates = certificates
    }

    /// The client's hello offered ALPN `acme-tls/1`: an ACME server validating a TLS-ALPN-01 challenge.
    var offersACMEChallenge = false

    /// The settings for the name the client's hello asked for; nil when that name's certificate
    /// has not been obtained yet (ACME).
    func choose(serverName: String?) -> NIOSSLContext? {
        if offersACMEChallenge, let serverName, let challenge = certificates.challengeContext(for: serverName) { return challenge }
        let offer = certificates.offer(for: serverName)
        negotiated = offer
        return offer.context
    }

    static let misdirected = ProtocolError(
        status: 421, reason: "this connection's TLS settings are not those of the host asked for: connect with its name")

    /// Whether a request for `host` must be refused with 421 Misdirected Request (RFC 9110
    /// §15.5.20): its host would have been served with other TLS settings than this connection's,
    /// and one of the two verifies client certificates — else a client could name another site in
    /// its hello to skip a host's `client_ca`, or carry a verified identity to a host that does not
    /// ask for one. Caddy refuses the same way (`strict_sni_host`).
    func misdirects(host: String) -> Bool {
        // Most servers: one set of settings, or none verifies clients — nothing to look up per request.
        guard certificates.canMisdirect, let negotiated else { return false }
        let wanted = certificates.offer(for: host.isEmpty ? nil : host)
        return wanted.id != negotiated.id && (wanted.verifiesClients || negotiated.verifiesClients)
    }
}
