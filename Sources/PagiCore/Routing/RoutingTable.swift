import PagiConfig

/// One route after compilation: plain data plus the handler and middleware objects built once.
/// A class although immutable: every routed request passes it along, and copying a struct of ten
/// collections and strings retains and releases each of them.
public final class CompiledRoute: Sendable {
    public let pattern: String
    /// nil = any method. Contains `HEAD` whenever it contains `GET`.
    public let methods: Set<String>?
    /// Lower-cased header name → exact value.
    public let headers: [String: String]
    public let query: [String: String]
    public let bodyJSON: [(path: String, value: ConfigValue)]
    public let handlerName: String
    public let handler: any Handler
    /// Host middleware followed by route middleware (named stacks expanded), outermost first.
    public let middleware: [any Middleware]
    public let middlewareNames: [String]
    public let location: SourceLocation

    public init(pattern: String, methods: Set<String>?, headers: [String: String], query: [String: String],
                bodyJSON: [(path: String, value: ConfigValue)], handlerName: String, handler: any Handler,
                middleware: [any Middleware], middlewareNames: [String], location: SourceLocation) {
        self.pattern = pattern
        self.methods = methods
        self.headers = headers
        self.query = query
        self.bodyJSON = bodyJSON
        self.handlerName = handlerName
        self.handler = handler
        self.middleware = middleware
        self.middlewareNames = middlewareNames
        self.location = location
    }
}

/// The result of routing one request.
public enum RouteLookup: Sendable {
    case matched(CompiledRoute, params: [String: String])
    /// The path matched routes, but none accepts the method: answer 405 with `Allow`.
    case methodNotAllowed(allow: [String])
    case notFound
}
