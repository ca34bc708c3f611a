import PagiConfig
import PagiCore

/// `headers`: edits the request before the rest of the chain sees it and the response on its
/// way back, error answers included.
struct HeadersMiddleware: Middleware {
    let response: HeaderEdits
    let request: HeaderEdits

    init(_ options: HeadersOptions) {
        response = options.response
        request = options.request
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        if !self.request.isEmpty { request.headers.apply(self.request) }
        var answer = next.respond(to: &request)
        if !response.isEmpty { answer.apply(ResponseHeaderEdit(edits: response)) }
        return answer
    }
}

struct ResponseHeaderEdit: ResponseEdit {
    let edits: HeaderEdits
    func apply(to response: inout Response) { response.headers.apply(edits) }
}
