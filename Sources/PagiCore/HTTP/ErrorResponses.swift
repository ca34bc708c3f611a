/// Reason phrases and the small bodies of error responses (docs/configuration.md §12): HTML for browsers,
/// JSON when the client asks for it, or the host's own page. Never a path or a stack trace.
public enum ErrorResponses {
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 426: return "Upgrade Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default:
            switch status / 100 {
            case 1: return "Informational"
            case 2: return "Success"
            case 3: return "Redirection"
            case 4: return "Client Error"
            default: return "Server Error"
            }
        }
    }

    /// True for a client that prefers JSON: `application/json` (or `+json`) is acceptable and
    /// ranks above `text/html` (browsers send `text/html` first).
    public static func prefersJSON(accept: String?) -> Bool {
        // Most clients (`*/*`, browsers) never mention JSON: answer them without parsing.
        guard let accept = accept?.lowercased(), accept.utf8.count >= 4,
              accept.utf8.indices.contains(where: { accept.utf8[$0...].starts(with: "json".utf8) }) else { return false }
        var jsonQ = -1.0, htmlQ = -1.0
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";")
            let type = parts.first.map { $0.trimmingOWS } ?? ""
            var q = 1.0
            for parameter in parts.dropFirst() {
                let kv = parameter.trimmingOWS
                if kv.hasPrefix("q="), let value = Double(kv.dropFirst(2)) { q = value }
            }
            if type == "application/json" || type.hasSuffix("+json") { jsonQ = max(jsonQ, q) }
            if type == "text/html" { htmlQ = max(htmlQ, q) }
        }
        return jsonQ > 0 && jsonQ > htmlQ
    }

    /// Fills in the body of an error response that a handler left empty.
    /// `customPage` is the host's page for this status (`errors:`), served for HTML clients.
    public static func fillBody(_ response: inout Response, accept: String?, customPage: [UInt8]?) {
        let status = response.status
        let reason = reasonPhrase(status)
        if prefersJSON(accept: accept) {
            setContentType(&response.headers, Self.jsonHeaders)
            response.body = .bytes(Array("{\"status\":\(status),\"error\":\"\(reason)\"}\n".utf8))
        } else if let customPage {
            setContentType(&response.headers, Self.htmlHeaders)
            response.body = .bytes(customPage)
        } else {
            setContentType(&response.headers, Self.htmlHeaders)
            response.body = .bytes(builtInPages[status] ?? builtInPage(status))
        }
    }

    /// Most error responses have no header of their own: they get a prepared set, serialised once.
    private static func setContentType(_ headers: inout HeaderFields, _ prepared: HeaderFields) {
        if headers.count == 0 {
            headers = prepared
        } else if let contentType = prepared["Content-Type"] {
            headers.set("Content-Type", contentType)
        }
    }

    private static let htmlHeaders = prepared(["Content-Type": "text/html; charset=utf-8"])
    private static let jsonHeaders = prepared(["Content-Type": "application/json"])

    private static func prepared(_ headers: HeaderFields) -> HeaderFields {
        var headers = headers
        headers.prepareFieldLines()
        return headers
    }

    /// The built-in HTML error pages, made once (a 404 flood should not format a page per request).
    private static let builtInPages: [Int: [UInt8]] = Dictionary(uniqueKeysWithValues: (400...599).map { ($0, builtInPage($0)) })

    private static func builtInPage(_ status: Int) -> [UInt8] {
        let reason = reasonPhrase(status)
        return Array(("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(status) \(reason)</title></head>"
            + "<body><h1>\(status) \(reason)</h1></body></html>\n").utf8)
    }

    /// Whether the engine should give `response` an error body: an error status with nothing in it.
    public static func needsBody(_ response: Response) -> Bool {
        guard response.status >= 400, case .empty = response.body else { return false }
        return !response.headers.contains("Content-Type")
    }
}

extension StringProtocol {
    /// The value without leading and trailing optional whitespace (SP and HTAB, RFC 9110 §5.6.3).
    public var trimmingOWS: String {
        String(Substring(self).withoutOWS)
    }
}
