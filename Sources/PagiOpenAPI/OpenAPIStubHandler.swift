import Foundation
import PagiConfig
import PagiCore

/// `openapi: {spec, validate}` on a subtree: every operation of the document answers below the
/// mount point with its documented example (or one built from the schema). `Prefer: code=…,
/// example=…` picks another documented response; with `validate`, requests that break the
/// document get 400 with an RFC 9457 problem document listing every violation, and a body of a
/// media type the operation does not take gets 415.
public struct OpenAPIStubHandler: Handler, SubrouteListing, AnswersEveryMethod, LoadReporting {
    /// The mount point without its trailing slash (`/api`).
    private let mount: String
    private let validate: Bool
    private let validator: RequestValidator
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
    /// For `pagi-serve check`: the document, its operations and how long loading took.
    public private(set) var loadReport = ""

    /// Loads the document of `options` for a route on `pattern`, which must be a plain subtree.
    public static func make(_ options: OpenAPIOptions, pattern: RoutePattern, location: SourceLocation) throws -> any Handler {
        guard pattern.isPlainSubtree else {
            throw ConfigError(diagnostics: [Diagnostic(.error, "openapi is mounted on a subtree: use a path like '/api/' (got '\(pattern)')", at: location)])
        }
        let clock = ContinuousClock()
        let start = clock.now
        let spec = try SpecLoader.load(path: options.spec, mountedAt: location)
        var handler = OpenAPIStubHandler(mount: String(pattern.text.dropLast()), validate: options.validate, spec: spec)
        let elapsed = (clock.now - start).components
        let milliseconds = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
        handler.loadReport = "openapi \(pattern.text): \((options.spec as NSString).lastPathComponent), \(spec.endpoints.count) operations, "
            + "loaded in \(Int(milliseconds.rounded())) ms"
        return handler
    }

    init(mount: String, validate: Bool, spec: CompiledSpec) {
        self.mount = mount
        self.validate = validate
        validator = RequestValidator(graph: spec.schemas)
        var paths: [PathEntry] = []
        var indexByPath: [String: Int] = [:]
        for (path, operation) in spec.endpoints {
            if let index = indexByPath[path] {
                paths[index].operations[operation.method] = operation
            } else {
                indexByPath[path] = paths.count
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
        var components = PathTemplate.components(of: Substring(request.path.utf8.dropFirst(mount.utf8.count)))
        // A segment that carries an encoded `/` (docs/architecture.md, "Paths"): the parameter gets it decoded.
        if request.pathHasEncodedSeparators {
            components = components.map { Substring(PercentDecoding.decode(String($0)) ?? String($0)) }
        }
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
            switch validator.verdict(for: request, pathParameters: pathParameters, operation: operation) {
            case .valid: break
            case .invalid(let violations): return Problem.invalidRequest(violations, operation: operation, instance: request.path)
            case .unauthorized(let needed):
                return Problem.response(status: 401, title: "Unauthorized", detail: "this operation needs \(needed)", instance: request.path)
            case .unsupportedMediaType(let type, let supported):
                return Problem.response(status: 415, title: "Unsupported Media Type",
                                        detail: "this operation takes \(supported.joined(separator: ", ")), not \(type)", instance: request.path)
            }
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
        for header in response.headers { headers.add(header.name, header.value) }
        if let applied = Preferences.applied(code: status, example: exampleName) { headers.add("Preference-Applied", applied) }
        return Response(status: status ?? response.status, headers: headers, body: body.isEmpty ? .empty : .bytes(body))
    }
}
