/// What a compiled configuration asks of the engine besides routing: someone to tell about every
/// answered request and connection (metrics), and the routing table of the admin listener.
public struct ServerServices: Sendable {
    public var observer: (any RequestObserver)?
    /// Served on `server.admin.listen` (`/metrics`, `/health`, `/routes`).
    public var admin: RoutingTable?
    /// ACME HTTP-01 tokens, answered before any route (docs/tls.md).
    public var acmeChallenges: ACMEChallengeAnswers?

    public init(observer: (any RequestObserver)? = nil, admin: RoutingTable? = nil, acmeChallenges: ACMEChallengeAnswers? = nil) {
        self.observer = observer
        self.admin = admin
        self.acmeChallenges = acmeChallenges
    }
}

/// Told about every answered request and every connection. Called on event-loop threads, so it
/// must be cheap and thread-safe. The engine builds no `ObservedRequest` when there is no observer.
public protocol RequestObserver: Sendable {
    func requestAnswered(_ request: ObservedRequest)
    func connectionOpened()
    func connectionClosed()
}

/// One answered request, with labels of bounded cardinality: host and route come from the config
/// (never from the request), so a scanner cannot blow up the number of metric series.
public struct ObservedRequest: Sendable {
    /// The first name of the host that served it, or nil when the request never reached routing.
    public var host: String?
    /// The pattern of the matched route, or nil (404, 405, protocol errors).
    public var route: String?
    public var method: String
    public var status: Int
    public var bodyBytes: Int
    public var durationSeconds: Double

    public init(host: String?, route: String?, method: String, status: Int, bodyBytes: Int, durationSeconds: Double) {
        self.host = host
        self.route = route
        self.method = method
        self.status = status
        self.bodyBytes = bodyBytes
        self.durationSeconds = durationSeconds
    }
}
