import PagiConfig
import PagiCore

/// `ip_filter`: 403 unless the client address (after `trusted_proxies`) is allowed. The most
/// specific network that contains the address decides; on a tie, deny wins. An address in no
/// listed network is denied when there is an `allow` list (only `deny`: allowed).
struct IPFilterMiddleware: Middleware {
    /// Every network with its verdict, most specific first (deny before allow on equal length).
    private let rules: [(network: CIDR, allows: Bool)]
    private let allowsUnlisted: Bool

    init(_ options: IPFilterOptions) {
        let rules = options.deny.map { (network: $0, allows: false) } + options.allow.map { (network: $0, allows: true) }
        // Stable sort on prefix length keeps deny ahead of allow for equal lengths.
        self.rules = rules.enumerated().sorted { a, b in
            a.element.network.prefixLength != b.element.network.prefixLength
                ? a.element.network.prefixLength > b.element.network.prefixLength : a.offset < b.offset
        }.map(\.element)
        allowsUnlisted = options.allow.isEmpty
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        guard allows(request.clientAddress) else { return Response(status: 403) }
        return next.respond(to: &request)
    }

    func allows(_ address: String) -> Bool {
        // An address that does not parse (a Unix socket peer shows as "-") matches no network.
        guard let bytes = TrustedProxies.ipBytes(address) else { return allowsUnlisted }
        return rules.first { $0.network.contains(bytes) }?.allows ?? allowsUnlisted
    }
}
