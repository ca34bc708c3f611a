import NIOCore
import PagiCore

/// Turns the parser's events for one request into a `Request` (docs/architecture.md): validation,
/// `trusted_proxies`, the route's `body_limit` and the body itself. Knows nothing of the channel;
/// `HTTPConnectionHandler` feeds it and answers what it refuses.
struct RequestIntake {
    /// The request being received.
    private struct Pending {
        var request: Request
        var body: [UInt8] = []
        var started: NIODeadline
        /// The table that routes this request, loaded once: a reload swaps tables between requests.
        var table: RoutingTable
        /// A `body_limit` smaller than the server's, checked while the body arrives.
        var bodyLimit: Int?
    }

    /// A request taken in, ready to be answered by `table`.
    struct Complete {
        var request: Request
        var table: RoutingTable
        var started: NIODeadline
    }

    private var pending: Pending?
    /// The head of the request being received, kept until it completes or fails (an error answer
    /// is logged with its method and target, and honours its `Accept`).
    private(set) var head: RequestHead?

    var inProgress: Bool { head != nil }

    /// A request head arrived. Throws what it must be answered with when it cannot be served
    /// (unknown method, bad `Host`, a body declared larger than the route's `body_limit`).
    mutating func start(_ head: RequestHead, table: RoutingTable, peerIP: String,
                        trustedProxies: TrustedProxies) throws(ProtocolError) {
        self.head = head
        var request = try RequestValidation.makeRequest(head, clientAddress: peerIP, knownMethods: table.knownMethods,
                                                         routesUnknownMethods: table.routesUnknownMethods)
        if !trustedProxies.isEmpty { request.believeForwarding(from: trustedProxies, peer: peerIP) }
        var bodyLimit: Int?
        if head.framing != .none, let limit = table.bodyLimit(for: request) {
            // `body_limit` (docs/configuration.md §10): refused before reading when the length is known.
            if case .length(let length) = head.framing, length > limit { throw Self.overBodyLimit }
            bodyLimit = limit
        }
        pending = Pending(request: request, started: .now(), table: table, bodyLimit: bodyLimit)
    }

    /// A piece of the body arrived.
    mutating func append(_ chunk: inout ByteBuffer) throws(ProtocolError) {
        guard let received = pending?.body.count else { return }
        if let limit = pending?.bodyLimit, received + chunk.readableBytes > limit { throw Self.overBodyLimit }
        pending?.body.append(contentsOf: chunk.readableBytesView)
    }

    /// The request is complete. Taken out rather than copied: a copy of a request retains every
    /// string in it.
    mutating func finish() -> Complete? {
        head = nil
        guard var finished = pending.take() else { return nil }
        finished.request.body = finished.body
        return Complete(request: finished.request, table: finished.table, started: finished.started)
    }

    /// Forgets the request (a protocol error ends the connection); returns its head, if any.
    mutating func abandon() -> RequestHead? {
        pending = nil
        return head.take()
    }

    private static let overBodyLimit = ProtocolError(status: 413, reason: "request body over the route's body_limit")
}
