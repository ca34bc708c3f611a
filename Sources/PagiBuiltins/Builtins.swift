import PagiConfig
import PagiCore
import PagiEngine
import PagiMetrics
import PagiMiddleware
import PagiOpenAPI
import PagiRealtime
import PagiRespond
import PagiWebSocket

/// The composition root: every built-in handler by name, from whichever module implements it,
/// and every built-in middleware.
/// The core knows only the handlers that need nothing but the core (e.g. `static`); the others
/// (built on the engine, on channels, on metrics) are registered here, so the CLI and the tests
/// compile a config exactly the same way.
public enum Builtins {
    /// Handler makers beyond the core's, keyed by handler name. With `metrics`, published channel
    /// messages are counted.
    public static func extensions(for config: Config, metrics: ServerMetrics? = nil) -> [String: HandlerFactory.Maker] {
        // One broker per compiled config, shared by every channel handler (sse, publish, websocket).
        var broker = Realtime.makeBroker(config)
        if let metrics { broker = CountingChannelBroker(broker, metrics: metrics) }
        var makers: [String: HandlerFactory.Maker] = [:]
        makers.merge(Realtime.makers(broker: broker)) { $1 }
        makers.merge(RespondHandlers.makers) { $1 }
        makers["openapi"] = OpenAPIStubHandler.make
        makers["websocket"] = WebSocketHandler.maker(broker: broker)
        if let metrics { makers["metrics"] = { _, _, _ in MetricsHandler(metrics: metrics) } }
        return makers
    }

    /// Compiles `config` into a routing table with every built-in handler. Each compilation gets
    /// its own metrics (when a `metrics` route or the admin listener asks for them).
    public static func compile(_ config: Config) throws -> RoutingTable {
        guard AdminRoutes.wantsMetrics(config) else {
            return try HandlerFactory.compile(config, extensions: extensions(for: config), makeMiddleware: BuiltinMiddleware.make)
        }
        let metrics = ServerMetrics()
        let makers = extensions(for: config, metrics: metrics)
        let table = try HandlerFactory.compile(config, extensions: makers, makeMiddleware: BuiltinMiddleware.make)
        let admin = try config.server.adminListen.map { _ in try AdminRoutes.compile(serving: table, makers: makers) }
        return table.with(ServerServices(observer: metrics, admin: admin))
    }
}
