import PagiConfig
import PagiCore

/// `openapi: {spec, validate}` on a subtree: every operation of the document answers below the
/// mount point with its documented example (or one built from the schema). `Prefer: code=…,
/// example=…` picks another documented response; with `validate`, requests that break the
/// document get 400 with an RFC 9457 problem document listing every violation.
public struct OpenAPIStubHandler: Handler, SubrouteListing {
    /// The mount point without its trailing slash (`/api`).
    private let mount: String
    private let validate: Bool
    /// A path of the document and its operations by method.
    private struct PathEntry {
        let template: PathTemplate
        var operations: [String: StubOperation]
        /// The full pattern (`/api/users/{id}`): the route label of its responses in the metrics.
        let pattern: String
    }
    /// Most specific first, so `/users/me` wins over `/users/{id}`.
    private let paths: [PathEntry]
    /// For `pagi-serve routes`, in document order.
    public let subroutes: [Subroute]

    /// Loads the document of `options` for a route on `pattern`, which must be a plain subtree.
    public static func make(_ options: OpenAPIOptions, pattern: RoutePattern, location: SourceLocation) throws -> any Handler {
        guard pattern.isPlainSubtree else {
            throw ConfigError(diagnostics: [Diagnostic(.error, "openapi is mounted on a subtree: use a path like '/api/' (got '\(pattern)')", at: location)])
        }
        let document = try SpecLoader.load(path: options.spec, mountedAt: location)
        return OpenAPIStubHandler(mount: String(pattern.text.dropLast()), validate: options.validate, endpoints: document.endpoints.map {
            (path: $0.path.rawValue, operation: StubOperation($0))
        })
    }

    init(mount: String, validate: Bool, endpoints: [(path: String, operation: StubOperation)]) {
        self.mount = mount
        self.validate = validate
        var paths: [PathEntry] = []
        for (path, operation) in endpoints {
            if let index = paths.firstIndex(where: { $0.template.text == path }) {
                paths[index].operations[operation.method] = operation
            } else {
                paths.append(PathEntry(template: PathTemplate(path), operations: [operation.method: operation], pattern: mount + path))
            }
        }
        subroutes = paths.flatMap { path in
            path.operations.values.sorted { $0.method < $1.method }.map { operation in
                Subroute(pattern: path.pattern, methods: [operation.method],
                         description: operation.operationId.map { "operationId=\($0)" } ?? "(no operationId)")
            }
        }
        // Stable: equally specific paths keep document order.
        self.paths = paths.enumerated().sorted { a, b in
            let (x, y) = (a.element.template.specificity, b.element.template.specificity)
            return x == y ? a.offset < b.offset : x.lexicographicallyPrecedes(y) { $0 && !$1 }
        }.map(\.element)
    }

    public func handle(_ request: Request) -> Response {
        var request = request
        return respond(to: &request)
    }

    /// Also names the operation's path as the route that answered (metrics, logs).
    public func respond(to request: inout Request) -> Response {
        let components = request.path.dropFirst(mount.count).split(separator: "/", omittingEmptySubsequences: true)
        guard let found = route(components) else {
            return Problem.response(status: 404, title: "Not Found", detail: "no operation of the API description matches \(request.path)",
                                    instance: request.path)
        }
        request.context.routePattern = found.path.pattern
        return answer(request, path: found.path, pathParameters: found.parameters)
    }

    private func answer(_ request: Request, path: PathEntry, pathParameters: [String: String]) -> Response {
        guard let operation = path.operations[request.isHead ? "GET" : request.method] else {
            var allow = Set(path.operations.keys)
            if allow.contains("GET") { allow.insert("HEAD") }
            var response = Problem.response(status: 405, title: "Method Not Allowed",
                                            detail: "\(request.method) is not an operation of \(path.template.text)", instance: request.path)
            response.headers.set("Allow", allow.sorted().joined(separator: ", "))
            return response
        }
        if validate {
            let violations = RequestValidator.violations(of: request, pathParameters: pathParameters, operation: operation)
            if !violations.isEmpty { return Problem.invalidRequest(violations, operation: operation, instance: request.path) }
        }
        return stubResponse(operation, preferences: Preferences(headerValues: request.headers.values("Prefer")))
    }

    /// The most specific path matching the request's components, and its captured parameters.
    private func route(_ components: [Substring]) -> (path: PathEntry, parameters: [String: String])? {
        for path in paths {
            if let parameters = path.template.match(components) { return (path, parameters) }
        }
        return nil
    }

    /// The documented response the client prefers, else the default one.
    private func stubResponse(_ operation: StubOperation, preferences: Preferences) -> Response {
        var status: Int?
        var chosen: StubResponse?
        if let code = preferences.code {
            chosen = operation.responses.first { !$0.isDefault && $0.status == code }
                ?? operation.responses.first { $0.isDefault && $0.covers.contains(code) }
            status = chosen.map { _ in code }
        }
        var exampleName: String?
        if let name = preferences.example {
            let candidates = chosen.map { [$0] } ?? operation.responses
            if let withExample = candidates.first(where: { $0.body(example: name) != nil }) {
                chosen = withExample
                exampleName = name
            }
        }
        guard let response = chosen ?? operation.defaultResponse else { return Response(status: 204) }
        let body = response.body(example: exampleName) ?? []
        var headers = HeaderFields()
        if let contentType = response.contentType { headers.add("Content-Type", contentType) }
        if let applied = Preferences.applied(code: status, example: exampleName) { headers.add("Preference-Applied", applied) }
        return Response(status: status ?? response.status, headers: headers, body: body.isEmpty ? .empty : .bytes(body))
    }
}
