import PagiConfig

/// Anything that answers a request: a handler, a handler wrapped in middleware, a host's router,
/// a whole host with its middleware (docs/architecture.md). Built once when the config is
/// compiled and shared by every event loop, so it must be `Sendable` and keep no per-request state.
/// `request` is `inout` so the engine logs the request as middleware and routing left it.
public protocol Responder: Sendable {
    func respond(to request: inout Request) -> Response
}

/// What every route handler implements. `request.params` holds the route's captured parameters.
public protocol Handler: Responder {
    func handle(_ request: Request) -> Response
}

extension Handler {
    public func respond(to request: inout Request) -> Response { handle(request) }
}

/// A handler that answers every method itself, unknown ones included (`openapi`: 405 with its own
/// `Allow`). Elsewhere a method the server does not know gets 501.
public protocol AnswersEveryMethod: Handler {}

/// What every middleware implements. `next` is the rest of the chain (more middleware, then the
/// router or the handler); a middleware may answer by itself, edit the request before it passes
/// it on, or edit the response on its way back.
public protocol Middleware: Sendable {
    func handle(_ request: inout Request, next: any Responder) -> Response
}

/// A middleware that answers CORS preflight requests itself (`cors`): routing lets preflights
/// through to a route that has one, even when the route's `methods:` leave out `OPTIONS`.
public protocol PreflightAnswering: Middleware {}

/// One middleware and the rest of the chain behind it.
struct MiddlewareResponder: Responder {
    let middleware: any Middleware
    let next: any Responder
    func respond(to request: inout Request) -> Response { middleware.handle(&request, next: next) }
}

extension Array where Element == any Middleware {
    /// `responder` wrapped in these middleware, the first outermost. Composed once at compile
    /// time; no middleware means the responder itself, so an empty chain costs nothing.
    func wrapping(_ responder: any Responder) -> any Responder {
        reversed().reduce(responder) { next, middleware in MiddlewareResponder(middleware: middleware, next: next) }
    }
}
