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

extension HeaderFields {
    /// Removes, then sets, then adds. Removing `Server` leaves an empty `Server` field, which the
    /// engine takes as "send none" (it adds its own otherwise).
    mutating func apply(_ edits: HeaderEdits) {
        for name in edits.remove {
            remove(name)
            if name.asciiCaseInsensitiveEquals("server") { add("Server", "") }
        }
        for pair in edits.set { set(pair.name, pair.value) }
        for pair in edits.add { add(pair.name, pair.value) }
    }
}
