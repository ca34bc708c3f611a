import PagiConfig

/// Builds the handler object for a route's handler config, once, when the config is compiled.
/// Handlers that need more than the core (WebSocket, SSE, channels, metrics) are passed in as
/// `extensions` by the module that implements them, keyed by handler name.
public enum HandlerFactory {
    /// Makes the handler for one route from its validated options; throws `ConfigError` for
    /// mistakes only found when compiling (a template that does not parse, an unreadable spec).
    public typealias Maker = (_ options: ConfigValue, _ pattern: String, _ location: SourceLocation) throws -> any Handler

    public static func make(_ config: HandlerConfig, pattern: String, location: SourceLocation,
                            extensions: [String: Maker] = [:]) throws -> any Handler {
        switch config {
        case .static(let staticConfig):
            return StaticHandler(config: staticConfig, pattern: pattern)
        case .other(let name, let options):
            guard let maker = extensions[name] else {
                // Accepted and validated by the loader (which warned at start-up); answers honestly.
                return NotImplementedHandler()
            }
            return try maker(options, pattern, location)
        }
    }

    /// Compiles a config into a routing table with the built-in handlers, `extensions`, and the
    /// middleware `makeMiddleware` builds.
    public static func compile(_ config: Config, extensions: [String: Maker] = [:],
                               makeMiddleware: (MiddlewareSpec) -> any Middleware) throws -> RoutingTable {
        try RoutingTable.compile(config, makeHandler: { try make($0, pattern: $1, location: $2, extensions: extensions) },
                                 makeMiddleware: makeMiddleware)
    }
}

/// The handler of a route whose handler type this release does not implement yet.
struct NotImplementedHandler: Handler {
    func handle(_ request: Request) -> Response { Response(status: 501) }
}
