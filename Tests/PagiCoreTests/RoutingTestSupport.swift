import PagiConfig
import XCTest
@testable import PagiCore

/// Answers with its route's pattern, so a test can see which route a request reached.
struct PatternEchoHandler: Handler {
    let pattern: String
    func handle(_ request: Request) -> Response { Response(status: 200, body: .bytes(Array(pattern.utf8))) }
}

/// Records its name on the way in (`X-Trace` request header, which `PatternEchoHandler` ignores)
/// and on the way out (`X-Trace` response header), so a test sees the chain's order.
struct TracingMiddleware: Middleware {
    let name: String
    func handle(_ request: inout Request, next: any Responder) -> Response {
        request.headers.add("X-Trace", "in:" + name)
        var response = next.respond(to: &request)
        response.headers.add("X-Trace", "out:" + name)
        return response
    }
}

/// Patterns written in tests are valid by construction (the loader's tests cover invalid ones).
extension RoutePattern: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        // swiftlint:disable:next force_try
        try! self.init(parsing: value)
    }
}

/// Builds configs in code (no YAML loader): every route sits on its own line of `routes.yaml`.
enum RoutingFixture {
    static let file = "routes.yaml"

    static func at(_ line: Int, _ column: Int = 11) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column)
    }

    static func route(_ path: String, line: Int, methods: [String]? = nil, headers: [String: String] = [:],
                      query: [String: String] = [:], body: [(path: String, value: ConfigValue)] = [],
                      middleware: [MiddlewareItem] = [], handler: HandlerConfig = .respond(RespondOptions(responses: []))) -> RouteConfig {
        var route = RouteConfig(pattern: RoutePattern(stringLiteral: path), pathLocation: at(line), handler: handler,
                                handlerLocation: at(line + 1, 7), location: at(line, 5))
        route.methods = methods
        route.headers = headers
        route.query = query
        route.bodyJSON = body
        route.middleware = middleware
        return route
    }

    static func host(_ names: [String], isDefault: Bool = false, line: Int = 1, middleware: [MiddlewareItem] = [],
                     routes: [RouteConfig]) -> HostConfig {
        var host = HostConfig(location: at(line, 5))
        host.names = names
        host.isDefault = isDefault
        host.middleware = middleware
        host.routes = routes
        return host
    }

    /// A built-in item with default options (`body_limit` takes `bodyLimit` bytes).
    static func builtin(_ name: String, line: Int = 100, bodyLimit: Int = 1024) -> MiddlewareItem {
        let spec: MiddlewareSpec = switch name {
        case "request_id": .requestID(RequestIDOptions())
        case "cors": .cors(CORSOptions())
        case "compress": .compress(CompressOptions())
        case "body_limit": .bodyLimit(bodyLimit)
        default: .headers(HeadersOptions())
        }
        return MiddlewareItem(kind: .builtin(spec), location: at(line, 9))
    }

    static func stack(_ name: String, line: Int = 100) -> MiddlewareItem {
        MiddlewareItem(kind: .stack(name), location: at(line, 9))
    }

    /// Every middleware item becomes a `TracingMiddleware` named after its kind.
    static func compile(_ hosts: [HostConfig], stacks: [String: [MiddlewareItem]] = [:],
                        serverMiddleware: [MiddlewareItem] = []) throws -> RoutingTable {
        var config = Config()
        config.hosts = hosts
        config.middlewareStacks = stacks
        config.server.middleware = serverMiddleware
        return try RoutingTable.compile(
            config,
            makeHandler: { PatternEchoHandler(pattern: $0.path) },
            makeMiddleware: { TracingMiddleware(name: $0.kind.rawValue) })
    }

    static func compile(_ routes: [RouteConfig]) throws -> RoutingTable {
        try compile([host(["example.com"], routes: routes)])
    }

    /// The diagnostics that compiling `hosts` throws (none if it succeeds).
    static func diagnostics(_ hosts: [HostConfig], stacks: [String: [MiddlewareItem]] = [:]) -> [String] {
        do {
            _ = try compile(hosts, stacks: stacks)
            return []
        } catch let error as ConfigError {
            return error.diagnostics.map(\.description)
        } catch {
            return ["unexpected error \(error)"]
        }
    }

    /// `target` is `/path?query`; the path is taken as already normalised.
    static func request(_ method: String = "GET", _ target: String, host: String = "example.com",
                        headers: HeaderFields = [:], body: String = "") -> Request {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return Request(method: method, target: target, path: String(parts[0]), query: parts.count > 1 ? String(parts[1]) : nil,
                       headers: headers, host: host, body: Array(body.utf8))
    }
}

extension RoutingTable {
    /// Line of the route that serves `request`, or nil for 404/405.
    func matchedLine(for request: Request) -> Int? {
        if case .matched(let route, _) = route(request).lookup { return route.location.line }
        return nil
    }

    func matchedLine(_ target: String, method: String = "GET", headers: HeaderFields = [:], body: String = "") -> Int? {
        matchedLine(for: RoutingFixture.request(method, target, headers: headers, body: body))
    }

    func parameters(_ target: String) -> [String: String]? {
        if case .matched(_, let params) = route(RoutingFixture.request("GET", target)).lookup { return params }
        return nil
    }
}
