import PagiConfig
import PagiCore
import PagiEngine
import PagiMetrics
import PagiMiddleware
import PagiOpenAPI
import PagiProxy
import PagiRealtime
import PagiRespond
import PagiWebSocket
import Synchronization

/// The composition root: builds every handler and middleware from its typed options, from
/// whichever module implements it, so the CLI and the tests compile a config exactly the same
/// way. The `switch` over handlers is exhaustive, like `BuiltinMiddleware.make`: a handler the
/// config language names but nothing builds does not compile (docs/architecture.md).
public enum Builtins {
    /// Compiles `config` into a routing table, with its own channel broker and metrics.
    public static func compile(_ config: Config) throws -> RoutingTable {
        try Compiler().compile(config)
    }

    /// Compiles one configuration after another — the one a server starts with, then each reload
    /// (docs/operations.md) — keeping what must outlive a reload: the channel broker, so that
    /// WebSockets and SSE streams opened before it still get the messages published after it
    /// (a new one only when `pubsub` itself changes), and the metrics, so that counters go on.
    public final class Compiler: Sendable {
        private let metrics = ServerMetrics()
        private let broker = Mutex<(pubsub: String, broker: any ChannelBroker)?>(nil)

        public init() {}

        /// The metrics observe requests when a `metrics` route or the admin listener asks.
        public func compile(_ config: Config) throws -> RoutingTable {
            let observed = AdminRoutes.wantsMetrics(config)
            let shared = sharedBroker(config)
            var broker = shared.broker
            if observed { broker = CountingChannelBroker(broker, metrics: metrics) }
            let handlers = Handlers(broker: broker, metrics: metrics)
            var table = try RoutingTable.compile(config, labelsRequests: observed, makeHandler: handlers.make,
                                                 makeMiddleware: BuiltinMiddleware.make)
            let acmeChallenges = ACMEChallengeAnswers(config)
            if observed || acmeChallenges != nil {
                let admin = observed ? try config.server.adminListen.map { _ in try AdminRoutes.compile(serving: table, handlers: handlers) } : nil
                table = table.with(ServerServices(observer: observed ? metrics : nil, admin: admin, acmeChallenges: acmeChallenges))
            }
            // A config that does not compile leaves the broker of the one in force in place.
            if shared.isNew { self.broker.withLock { $0 = (config.pubsub, shared.broker) } }
            return table
        }

        private func sharedBroker(_ config: Config) -> (broker: any ChannelBroker, isNew: Bool) {
            if let current = broker.withLock({ $0 }), current.pubsub == config.pubsub { return (current.broker, false) }
            return (Realtime.makeBroker(config), true)
        }
    }

    /// Builds the handler of one route; what the routes of one compiled config share (the
    /// channel broker, the metrics) is made once, by `compile`.
    struct Handlers {
        let broker: any ChannelBroker
        let metrics: ServerMetrics

        func make(_ route: RouteConfig) throws -> any Handler {
            let location = route.handlerLocation
            switch route.handler {
            case .static(let options): return StaticHandler(config: options, pattern: route.pattern)
            case .respond(let options): return try RespondHandler(options, location: location)
            case .redirect(let options): return try RedirectHandler(options, location: location)
            case .proxy(let options): return try ProxyHandler(options, pattern: route.pattern, location: location)
            case .websocket(let options): return try WebSocketHandler(options, pattern: route.pattern, broker: broker, location: location)
            case .sse(let options): return try Realtime.sse(options, pattern: route.pattern, location: location, broker: broker)
            case .publish(let channel): return try Realtime.publish(channel: channel, pattern: route.pattern, location: location, broker: broker)
            case .openapi(let options): return try OpenAPIStubHandler.make(options, pattern: route.pattern, location: location)
            case .health: return HealthHandler()
            case .metrics: return MetricsHandler(metrics: metrics)
            }
        }
    }
}
