import Foundation
import Mustache
import PagiCore

/// `sse: {ticker: {every, data, event}}`: an event every `every`, its data a Mustache template
/// rendered for each tick with the request's context plus `now` (RFC 3339), `uuid` and `count`.
struct Ticker: Sendable {
    let every: Duration
    let data: MustacheTemplate
    let event: String?

    /// Events carry text, so values are inserted as they are, not HTML-escaped.
    static func compile(_ template: String) throws -> MustacheTemplate {
        try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + template)
    }

    func tick(_ sink: any BodySink, number: UInt64, request: Request) {
        sink.schedule(after: every) {
            let text = data.render(Self.context(request, count: number))
            let bytes = ServerSentEvent.encode(id: String(number), event: event, data: Array(text.utf8))
            guard EventStream.send(bytes, to: sink) else { return }
            tick(sink, number: number &+ 1, request: request)
        }
    }

    private static func context(_ request: Request, count: UInt64) -> [String: Any] {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.lowercased()] = field.value }
        return [
            "now": Date.now.formatted(.iso8601),
            "uuid": UUID().uuidString.lowercased(),
            "count": count,
            "method": request.method,
            "path": request.params,
            "query": request.queryItems,
            "headers": headers,
            "host": request.host,
            "uri": request.target,
            "client_ip": request.clientAddress,
        ]
    }
}
