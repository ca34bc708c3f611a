import NIOCore
import PagiCore

/// Turns the parser's events for one request into a `Request` (docs/architecture.md): validation,
/// `trusted_proxies`, the route's `body_limit` and the body itself. Knows nothing of the channel;
/// `HTTPConnectionHandler` feeds it and answers what it refuses.
struct RequestIntake {
    /// A request taken in: complete once `finish()` hands it over, ready to be answered by `table`.
    struct Accepted {
        var request: Request
        /// The table that routes this request, loaded once: a reload swaps tables between requests.
        var table: RoutingTable
        var started: NIODeadline
        /// A `body_limit` smaller than the server's, checked while the body arrives.
        var bodyLimit: Int?
    }

    private var accepted: Accepted?
    /// The head of the request being received, kept until it completes or fails (an error answer
    /// is logged with its method and target, and honours its `Accept`).
    private(set) var head: RequestHead?

    var inProgress: Bool { head != nil }

    /// The request whose head arrived, for an engine that reads bodies itself (HTTP/2).
    mutating func takeAccepted() -> Accepted? {
        defer { (accepted, head) = (nil, nil) }
        return accepted
    }

    /// The host name the request in progress asked for (its `Host`, lower case, without port).
    var host: String? { accepted?.request.host }

    /// A request head arrived. Throws what it must be answered with when it cannot be served
    /// (unknown method, bad `Host`, a body declared larger than the route's `body_limit`).
    mutating func start(_ head: RequestHead, table: RoutingTable, peerIP: String,
                        trustedProxies: TrustedProxies, encrypted: Bool, clientSubject: String?) throws(ProtocolError) {
        self.head = head
        var accepted = Accepted(
            request: try RequestValidation.makeRequest(head, clientAddress: peerIP, knownMethods: table.knownMethods,
                                                       routesUnknownMethods: table.routesUnknownMethods),
            table: table, started: .now())
        if encrypted { accepted.request.context.scheme = .https }
        if let clientSubject { accepted.request.context.clientSubject = clientSubject }
        if !trustedProxies.isEmpty { accepted.request.believeForwarding(from: trustedProxies, peer: peerIP) }
        if head.framing != .none, let limit = table.bodyLimit(for: accepted.request) {
            // `body_limit` (docs/configuration.md §10): refused before reading when the length is known.
            if case .length(let length) = head.framing, length > limit { throw Self.overBodyLimit }
            accepted.bodyLimit = limit
        }
        self.accepted = accepted
    }

    /// A piece of the body arrived.
    mutating func append(_ chunk: inout ByteBuffer) throws(ProtocolError) {
        guard let received = accepted?.request.body.count else { return }
        if let limit = accepted?.bodyLimit, received + chunk.readableBytes > limit { throw Self.overBodyLimit }
        accepted?.request.body.append(contentsOf: chunk.readableBytesView)
    }

    /// The request is complete. Moved out rather than copied: a copy of a request retains every
    /// string in it.
    mutating func finish() -> Accepted? {
        head = nil
        return accepted.take()
    }

    /// Forgets the request (a protocol error ends the connection); returns its head, if any.
    mutating func abandon() -> RequestHead? {
        accepted = nil
        return head.take()
    }

    private static let overBodyLimit = ProtocolError(status: 413, reason: "request body over the route's body_limit")
}
