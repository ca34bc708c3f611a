import CoreMetrics
import PagiCore
import Prometheus
import Synchronization

/// One server's metrics, recorded through swift-metrics into its own Prometheus registry (never
/// the process-wide default, so servers in one process — tests — never mix their counts).
public final class ServerMetrics: RequestObserver {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let openConnections: CoreMetrics.Meter
    private let pubsubMessages: CoreMetrics.Counter
    private let perRoute = Mutex<[RouteKey: RouteMetrics]>([:])
    private let perOutcome = Mutex<[OutcomeKey: CoreMetrics.Counter]>([:])

    /// Latency buckets from 1 ms to 10 s: stubs answer in well under a millisecond, proxies in seconds.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]
    /// Methods outside this set are counted as `OTHER`, so invented methods cannot add series.
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]

    enum Name {
        static let requests = "pagi_http_requests_total"
        static let latency = "pagi_http_request_duration_seconds"
        static let bytesSent = "pagi_http_sent_bytes_total"
        static let openConnections = "pagi_open_connections"
        static let pubsubMessages = "pagi_pubsub_messages_total"
    }

    private struct RouteKey: Hashable {
        let host: String
        let route: String
    }
    private struct OutcomeKey: Hashable {
        let route: RouteKey
        let method: String
        let statusClass: Int
    }
    private struct RouteMetrics {
        let latency: CoreMetrics.Timer
        let bytesSent: CoreMetrics.Counter
    }

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [Name.latency: Self.latencyBuckets]
        self.factory = factory
        openConnections = CoreMetrics.Meter(label: Name.openConnections, factory: factory)
        pubsubMessages = CoreMetrics.Counter(label: Name.pubsubMessages, factory: factory)
        // Present from the start, so a scrape before any connection already shows them at 0.
        openConnections.set(0)
        pubsubMessages.increment(by: 0)
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// Counts one message published on a pub/sub channel (see `CountingChannelBroker`).
    public func pubsubMessagePublished() { pubsubMessages.increment() }

    // MARK: RequestObserver

    public func connectionOpened() { openConnections.increment() }
    public func connectionClosed() { openConnections.decrement() }

    public func requestAnswered(_ request: ObservedRequest) {
        let route = RouteKey(host: request.host ?? "unknown", route: request.route ?? "unmatched")
        let method = Self.knownMethods.contains(request.method) ? request.method : "OTHER"
        let outcome = OutcomeKey(route: route, method: method, statusClass: min(max(request.status / 100, 1), 5))
        let requests = perOutcome.withLock { counters in
            if let counter = counters[outcome] { return counter }
            let counter = CoreMetrics.Counter(label: Name.requests, dimensions: [
                ("host", route.host), ("route", route.route), ("method", method), ("status", "\(outcome.statusClass)xx"),
            ], factory: factory)
            counters[outcome] = counter
            return counter
        }
        let metrics = perRoute.withLock { all in
            if let metrics = all[route] { return metrics }
            let labels = [("host", route.host), ("route", route.route)]
            let metrics = RouteMetrics(latency: CoreMetrics.Timer(label: Name.latency, dimensions: labels, factory: factory),
                                       bytesSent: CoreMetrics.Counter(label: Name.bytesSent, dimensions: labels, factory: factory))
            all[route] = metrics
            return metrics
        }
        requests.increment()
        metrics.latency.recordSeconds(request.durationSeconds)
        metrics.bytesSent.increment(by: request.bodyBytes)
    }
}

/// A broker that counts every message published through it into `pagi_pubsub_messages_total`;
/// the channel handlers get their broker wrapped in it when metrics are on.
public struct CountingChannelBroker: ChannelBroker {
    private let base: any ChannelBroker
    private let metrics: ServerMetrics

    public init(_ base: any ChannelBroker, metrics: ServerMetrics) {
        self.base = base
        self.metrics = metrics
    }

    public func subscribe(_ channel: String, _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        base.subscribe(channel, receive)
    }

    public func subscribe(_ channel: String, receivers: @escaping @Sendable () -> Int,
                          _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        base.subscribe(channel, receivers: receivers, receive)
    }

    public func publish(_ message: ChannelMessage, to channel: String,
                        completion: @escaping @Sendable (Result<Int, ChannelError>) -> Void) {
        base.publish(message, to: channel) { [metrics] result in
            if case .success = result { metrics.pubsubMessagePublished() }
            completion(result)
        }
    }
}

/// `metrics: prometheus`: the server's metrics as Prometheus text.
public struct MetricsHandler: Handler {
    private let metrics: ServerMetrics

    public init(metrics: ServerMetrics) { self.metrics = metrics }

    public func handle(_ request: Request) -> Response {
        Response(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store"],
                 body: .bytes(metrics.exposition()))
    }
}
