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
    /// The body handed to the handler as it arrives (`StreamsRequestBody`), once `handOver` made it,
    /// until it ends or is abandoned: its request is answered (or being answered) meanwhile.
    private(set) var streamed: StreamedRequestBody?
    /// Bytes of a streamed body so far, and its request's `bodyLimit`.
    private var streamedBytes = 0
    private var streamedLimit: Int?
    /// The route takes this request's body as it arrives: route it once the head is in (`handOver`).
    private(set) var streamsBody = false
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
        streamsBody = false
        if head.framing != .none {
            let length: Int? = if case .length(let length) = head.framing { length } else { nil }
            let intake = table.bodyIntake(for: accepted.request, length: length)
            if let limit = intake.limit {
                // `body_limit` (docs/configuration.md §10): refused before reading when the length is known.
                if let length, length > limit { throw Self.overBodyLimit }
                accepted.bodyLimit = limit
            }
            streamsBody = intake.streamed
        }
        self.accepted = consume accepted
    }

    /// The request, to be answered now, its body to follow through `body` (docs/proxy.md,
    /// "Streamed uploads"). The request stays in progress until its body ends.
    mutating func handOver(_ body: StreamedRequestBody) -> Accepted? {
        guard var handed = accepted.take() else { return nil }
        handed.request.context.bodySource = body
        (streamed, streamedBytes, streamedLimit) = (body, 0, handed.bodyLimit)
        return handed
    }

    /// A piece of the body arrived.
    mutating func append(_ chunk: inout ByteBuffer) throws(ProtocolError) {
        if let streamed {
            streamedBytes += chunk.readableBytes
            if let limit = streamedLimit, streamedBytes > limit { throw Self.overBodyLimit }
            streamed.deliver(chunk)
            return
        }
        guard let received = accepted?.request.body.count else { return }
        if let limit = accepted?.bodyLimit, received + chunk.readableBytes > limit { throw Self.overBodyLimit }
        accepted?.request.body.append(contentsOf: chunk.readableBytesView)
    }

    /// The request is complete. Moved out rather than copied: a copy of a request retains every
    /// string in it.
    /// A streamed body is told it ended, and nil returned: its request was answered already.
    mutating func finish() -> Accepted? {
        head = nil
        streamed.take()?.end()
        return accepted.take()
    }

    /// Forgets the request (a protocol error ends the connection, or its answer was complete before
    /// its streamed body); returns its head, if any. A streamed body is told it broke off.
    mutating func abandon() -> RequestHead? {
        accepted = nil
        streamed.take()?.fail()
        return head.take()
    }

    private static let overBodyLimit = ProtocolError(status: 413, reason: "request body over the route's body_limit")
}
