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
    /// The route's own middleware wrapped around the handler (host and server middleware wrap
    /// the host's router instead, see `CompiledHost.responder`).
    public let responder: any Responder
    /// Every middleware a request to this route passes, server-wide first (named stacks expanded).
    public let middlewareNames: [String]
    /// The smallest `body_limit` on the way to this route, if any, for refusing a body before it is read.
    public let bodyLimit: Int?
    /// The route's own middleware answers CORS preflights (`cors`), so a preflight reaches it
    /// even when `methods:` leaves out `OPTIONS`.
    public let answersPreflight: Bool
    /// The handler answers every method itself (`AnswersEveryMethod`), unknown ones included.
    public let answersEveryMethod: Bool
    /// The handler, when it can take bodies as they arrive and nothing in the routing needs them
    /// whole first (no `body_json` condition).
    public let bodyStreamer: (any StreamsRequestBody)?
    public let location: SourceLocation

    public init(pattern: String, methods: Set<String>?, headers: [String: String], query: [String: String],
                bodyJSON: [(path: String, value: ConfigValue)], handlerName: String, handler: any Handler,
                middleware: [any Middleware], middlewareNames: [String], bodyLimit: Int?, location: SourceLocation) {
        self.pattern = pattern
        self.methods = methods
        self.headers = headers
        self.query = query
        self.bodyJSON = bodyJSON
        self.handlerName = handlerName
        self.handler = handler
        self.responder = middleware.wrapping(handler)
        self.middlewareNames = middlewareNames
        self.bodyLimit = bodyLimit
        self.answersPreflight = middleware.contains { $0 is any PreflightAnswering }
        self.answersEveryMethod = handler is any AnswersEveryMethod
        self.bodyStreamer = bodyJSON.isEmpty ? handler as? any StreamsRequestBody : nil
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
