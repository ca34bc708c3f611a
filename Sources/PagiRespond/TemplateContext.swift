import Foundation
import Mustache
import PagiCore

/// What a template sees of a request (docs/configuration.md §9.2). Each value is computed on first use and
/// kept for the rest of the response, so `{{uuid}}` and `{{now}}` agree everywhere in one response.
/// Made per request and used on one thread only.
final class TemplateContext: MustacheParent {
    private let request: Request
    private var computed: [String: Any?] = [:]
    private lazy var queryItems: [String: String] = request.lossyQueryItems
    private lazy var headerFields: [String: String] = lowerCasedHeaders

    init(_ request: Request) {
        self.request = request
    }

    func child(named name: String) -> Any? {
        if let known = computed[name] { return known }
        let value = compute(name)
        computed[name] = value
        return value
    }

    private func compute(_ name: String) -> Any? {
        switch name {
        case "method": return request.method
        case "path": return StringMapView(map: request.params)
        case "query": return StringMapView(map: queryItems)
        case "headers": return StringMapView(map: headerFields)
        case "body": return String(decoding: request.body, as: UTF8.self)
        case "json": return request.bodyJSON?.mustacheValue
        case "host": return request.context.forwardedHost ?? request.host
        case "uri": return request.target
        case "client_ip": return request.clientAddress
        case "scheme": return request.context.scheme.rawValue
        case "client_subject": return request.context.clientSubject
        case "now": return Date.now.formatted(.iso8601)
        case "uuid": return UUID().uuidString.lowercased()
        case "request_id": return request.context.requestID ?? request.headers["X-Request-ID"] ?? UUID().uuidString.lowercased()
        default: return nil
        }
    }

    /// The maps of strings (`path`, `query`, `headers`) as they are, for `{{name.key}}` without the
    /// boxing and casting of `child(named:)`; nil for every other name.
    func stringMap(named name: String) -> [String: String]? {
        switch name {
        case "path": request.params
        case "query": queryItems
        case "headers": headerFields
        default: nil
        }
    }

    /// Repeated fields are joined with ", " (RFC 9110 §5.3).
    private var lowerCasedHeaders: [String: String] {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.lowercased()
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        return headers
    }
}
