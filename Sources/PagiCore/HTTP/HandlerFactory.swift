import PagiConfig

/// Builds the handler object for a route's handler config, once, when the config is compiled.
public enum HandlerFactory {
    public static func make(_ config: HandlerConfig, pattern: String, location: SourceLocation) -> any Handler {
        switch config {
        case .static(let staticConfig):
            return StaticHandler(config: staticConfig, pattern: pattern)
        case .other:
            // Accepted and validated by the loader (which warned at start-up); answers honestly.
            return NotImplementedHandler()
        }
    }

    /// Compiles a config into a routing table with the built-in handlers.
    public static func compile(_ config: Config) throws -> RoutingTable {
        try RoutingTable.compile(config, makeHandler: make, makeMiddleware: { _ in nil })
    }
}

/// The handler of a route whose handler type this release does not implement yet.
struct NotImplementedHandler: Handler {
    func handle(_ request: Request) -> Response { Response(status: 501) }
}
