import PagiConfig
import PagiCore
import PagiEngine
import PagiWebSocket

/// The composition root: every built-in handler by name, from whichever module implements it.
/// The core knows only the handlers that need nothing but the core (e.g. `static`); the others
/// (built on the engine, on channels, on metrics) are registered here, so the CLI and the tests
/// compile a config exactly the same way.
public enum Builtins {
    /// Handler makers beyond the core's, keyed by handler name.
    public static func extensions(for config: Config) -> [String: HandlerFactory.Maker] {
        // One broker per compiled config: every channel route of the config shares it.
        let broker = MemoryChannelBroker()
        return ["websocket": WebSocketHandler.maker(broker: broker)]
    }

    /// Compiles `config` into a routing table with every built-in handler.
    public static func compile(_ config: Config) throws -> RoutingTable {
        try HandlerFactory.compile(config, extensions: extensions(for: config))
    }
}
