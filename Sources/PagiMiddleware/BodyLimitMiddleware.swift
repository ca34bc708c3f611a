import PagiCore

/// `body_limit`: 413 for a body over the limit. The engine already refuses such a body before
/// reading it (by `Content-Length`) or while reading it (chunked); this catches the routes only
/// the body itself could tell apart (`body_json` conditions).
struct BodyLimitMiddleware: Middleware {
    let limit: Int

    func handle(_ request: inout Request, next: any Responder) -> Response {
        guard request.body.count <= limit else { return Response(status: 413) }
        return next.respond(to: &request)
    }
}
