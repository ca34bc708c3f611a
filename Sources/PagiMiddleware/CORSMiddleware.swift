import PagiConfig
import PagiCore

/// `cors` (Fetch standard, "CORS protocol"): answers preflight requests itself and adds the
/// `Access-Control-*` fields to answers for allowed origins. A disallowed origin gets no CORS
/// field at all, so the browser keeps the answer from the page.
struct CORSMiddleware: PreflightAnswering {
    private let anyOrigin: Bool
    /// Lower-cased: origins compare case-insensitively in scheme and host.
    private let origins: Set<String>
    private let methods: Set<String>
    private let allowMethods: String
    /// Lower-cased; empty = whatever a preflight asks for.
    private let headers: Set<String>
    private let allowHeaders: String?
    private let expose: String?
    private let credentials: Bool
    private let maxAge: String?

    init(_ options: CORSOptions) {
        anyOrigin = options.origins.contains("*")
        origins = Set(options.origins.map { $0.lowercased() })
        methods = Set(options.methods)
        allowMethods = options.methods.joined(separator: ", ")
        headers = Set(options.headers.map { $0.lowercased() })
        allowHeaders = options.headers.isEmpty ? nil : options.headers.joined(separator: ", ")
        expose = options.expose.isEmpty ? nil : options.expose.joined(separator: ", ")
        credentials = options.credentials
        maxAge = options.maxAge.map(String.init)
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        guard let origin = request.headers["Origin"] else {
            var answer = next.respond(to: &request)
            answer.apply(VaryOnOrigin())
            return answer
        }
        let allowed = anyOrigin || origins.contains(origin.lowercased())
        if request.method == "OPTIONS", let asked = request.headers["Access-Control-Request-Method"] {
            return preflight(origin: origin, allowed: allowed, method: asked, headers: request.headers["Access-Control-Request-Headers"])
        }
        var answer = next.respond(to: &request)
        if allowed {
            answer.apply(AllowOrigin(origin: allowOriginValue(origin), credentials: credentials, expose: expose))
        } else {
            answer.apply(VaryOnOrigin())
        }
        return answer
    }

    /// The fields of an answer to an allowed origin.
    struct AllowOrigin: ResponseEdit {
        let origin: String
        let credentials: Bool
        let expose: String?
        func apply(to response: inout Response) {
            response.headers.set("Access-Control-Allow-Origin", origin)
            if credentials { response.headers.set("Access-Control-Allow-Credentials", "true") }
            if let expose { response.headers.set("Access-Control-Expose-Headers", expose) }
            response.headers.addVary("Origin")
        }
    }

    /// The answer depends on `Origin` even when it carries no CORS field: caches must know.
    struct VaryOnOrigin: ResponseEdit {
        func apply(to response: inout Response) { response.headers.addVary("Origin") }
    }

    /// 204 with what the browser asked about, or without any CORS field when the origin, the
    /// method or a header is not allowed.
    private func preflight(origin: String, allowed: Bool, method: String, headers asked: String?) -> Response {
        var response = Response(status: 204)
        response.headers.add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        let askedHeaders = (asked ?? "").split(separator: ",").map { $0.trimmingOWS.lowercased() }.filter { !$0.isEmpty }
        let headersAllowed = headers.isEmpty || askedHeaders.allSatisfy(headers.contains)
        guard allowed, methods.contains(method) || Self.safelistedMethods.contains(method), headersAllowed else { return response }
        response.headers.add("Access-Control-Allow-Origin", allowOriginValue(origin))
        response.headers.add("Access-Control-Allow-Methods", allowMethods)
        if let allowHeaders {
            response.headers.add("Access-Control-Allow-Headers", allowHeaders)
        } else if let asked, !askedHeaders.isEmpty {
            response.headers.add("Access-Control-Allow-Headers", asked)
        }
        if credentials { response.headers.add("Access-Control-Allow-Credentials", "true") }
        if let maxAge { response.headers.add("Access-Control-Max-Age", maxAge) }
        return response
    }

    private static let safelistedMethods: Set = ["GET", "HEAD", "POST"]

    /// `*` only where no credentials are involved; the origin itself otherwise.
    private func allowOriginValue(_ origin: String) -> String {
        anyOrigin && !credentials ? "*" : origin
    }

}

extension HeaderFields {
    /// Adds `token` to `Vary` unless it is already listed (or `Vary: *`).
    mutating func addVary(_ token: String) {
        guard let current = combinedValue("Vary") else {
            add("Vary", token)
            return
        }
        let listed = current.split(separator: ",").map { $0.trimmingOWS }
        guard !listed.contains(where: { $0 == "*" || $0.asciiCaseInsensitiveEquals(token) }) else { return }
        set("Vary", current + ", " + token)
    }
}
