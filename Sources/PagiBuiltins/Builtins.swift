import PagiConfig
import PagiCore
import PagiEngine
import PagiMetrics
import PagiOpenAPI

/// The composition root: every built-in handler by name, from whichever module implements it.
/// The core knows only the handlers that need nothing but the core (e.g. `static`); the others
/// (built on the engine, on channels, on metrics) are registered here, so the CLI and the tests
/// compile a config exactly the same way.
public enum Builtins {
    /// Handler makers beyond the core's, keyed by handler name.
    public static func extensions(for config: Config) -> [String: HandlerFactory.Maker] {
        ["openapi": OpenAPIStubHandler.make]
    }

    /// Compiles `config` into a routing table with every built-in handler. Each compilation gets
    /// its own metrics (when a `metrics` route or the admin listener asks for them).
    public static func compile(_ config: Config) throws -> RoutingTable {
        var makers = extensions(for: config)
        guard AdminRoutes.wantsMetrics(config) else { return try HandlerFactory.compile(config, extensions: makers) }
        let metrics = ServerMetrics()
        makers["metrics"] = { _, _, _ in MetricsHandler(metrics: metrics) }
        let table = try HandlerFactory.compile(config, extensions: makers)
        let admin = try config.server.adminListen.map { _ in try AdminRoutes.compile(serving: table, makers: makers) }
        return table.with(ServerServices(observer: metrics, admin: admin))
    }
}
