import PagiConfig

/// What every route handler implements. Handlers are built once when the config is compiled
/// and then shared by all event loops, so they must be `Sendable` and keep no per-request state.
public protocol Handler: Sendable {
    /// Answers one request. `request.params` holds the route's captured parameters.
    func handle(_ request: Request) -> Response
}

/// What every middleware implements. `next` runs the rest of the chain (and finally the handler);
/// a middleware may answer by itself, edit the request before, or the response after.
public protocol Middleware: Sendable {
    func handle(_ request: Request, next: (Request) -> Response) -> Response
}
