import PagiConfig
import XCTest
@testable import PagiCore

private typealias F = RoutingFixture

final class RoutingPatternTests: XCTestCase {
    func testPatternKinds() throws {
        let table = try F.compile([
            F.route("/about", line: 1), F.route("/docs/", line: 2), F.route("/users/{id}", line: 3),
            F.route("/files/{rest...}", line: 4), F.route("/{$}", line: 5),
        ])
        XCTAssertEqual(table.matchedLine("/about"), 1)
        XCTAssertNil(table.matchedLine("/about/"))
        XCTAssertNil(table.matchedLine("/about/x"))
        XCTAssertEqual(table.matchedLine("/docs/"), 2)
        XCTAssertEqual(table.matchedLine("/docs/a/b.html"), 2)
        XCTAssertEqual(table.matchedLine("/users/42"), 3)
        XCTAssertEqual(table.parameters("/users/42"), ["id": "42"])
        XCTAssertNil(table.matchedLine("/users/42/x"))
        XCTAssertNil(table.matchedLine("/users/"), "a parameter needs a non-empty segment")
        XCTAssertEqual(table.parameters("/files/a/b.txt"), ["rest": "a/b.txt"])
        XCTAssertEqual(table.parameters("/files/"), ["rest": ""])
        XCTAssertEqual(table.matchedLine("/"), 5)
        XCTAssertNil(table.matchedLine("/other"), "/{$} matches only /")
    }

    func testRootSubtreeMatchesEverything() throws {
        let table = try F.compile([F.route("/", line: 1)])
        for path in ["/", "/a", "/a/b/", "/a//b"] { XCTAssertEqual(table.matchedLine(path), 1, path) }
        XCTAssertNil(table.matchedLine("*"), "the asterisk form is the engine's business")
    }

    func testSubtreeRootWithoutSlashGoesToTheSubtree() throws {
        let table = try F.compile([F.route("/", line: 1), F.route("/docs/", line: 2), F.route("/files/{rest...}", line: 3)])
        XCTAssertEqual(table.matchedLine("/docs"), 2)
        XCTAssertEqual(table.parameters("/files"), ["rest": ""])
        XCTAssertEqual(table.matchedLine("/docsx"), 1)
    }

    func testExactMatchBeatsSubtreeRootWithoutSlash() throws {
        let table = try F.compile([F.route("/docs/", line: 1), F.route("/{page}", line: 2), F.route("/a/", line: 3),
                                   F.route("/a", line: 4)])
        XCTAssertEqual(table.matchedLine("/docs"), 2)
        XCTAssertEqual(table.matchedLine("/a"), 4)
        XCTAssertEqual(table.matchedLine("/a/"), 3)
    }

    func testNonASCIIAndCombiningMarksStaySegments() throws {
        let table = try F.compile([F.route("/café/{name}", line: 1), F.route("/", line: 2)])
        XCTAssertEqual(table.parameters("/café/\u{301}x"), ["name": "\u{301}x"])
    }
}

final class RoutingPrecedenceTests: XCTestCase {
    /// Every rule of §4.2.1, checked with the routes in file order and reversed.
    func testPrecedenceIsIndependentOfFileOrder() throws {
        let routes = [
            F.route("/", line: 1), F.route("/a/", line: 2), F.route("/a/b/", line: 3), F.route("/a/b", line: 4),
            F.route("/a/{x}", line: 5), F.route("/{y}/b", line: 6),
            F.route("/c/{x}/d", line: 8), F.route("/c/{rest...}", line: 9), F.route("/{y}/{z}", line: 10),
        ]
        let expectations: [(String, Int)] = [
            ("/a/b", 4),       // exact literal beats the param and the subtrees
            ("/a/c", 5),       // literal first segment beats {y}/b ... and {param} beats the subtree /a/
            ("/z/b", 6),       // left to right: {y} then literal b beats {y}/{z}
            ("/z/q", 10),
            ("/a/b/c", 3),     // longer subtree beats shorter
            ("/a/c/d", 2),
            ("/c/1/d", 8),     // a {param} beats {rest...}
            ("/c/1/e", 9),
            ("/q/r/s", 1),
        ]
        for order in [routes, routes.reversed()] {
            let table = try F.compile(order)
            for (path, line) in expectations { XCTAssertEqual(table.matchedLine(path), line, path) }
        }
    }

    func testSamePatternTriesMoreConditionsFirstThenFileOrder() throws {
        let routes = [
            F.route("/api", line: 1),
            F.route("/api", line: 2, headers: ["x-key": "k"]),
            F.route("/api", line: 3, headers: ["x-key": "k"], query: ["v": "2"]),
            F.route("/api", line: 4, query: ["v": "1"]),
        ]
        let table = try F.compile(routes)
        XCTAssertEqual(table.matchedLine("/api?v=2", headers: ["X-Key": "k"]), 3)
        XCTAssertEqual(table.matchedLine("/api?v=1", headers: ["X-Key": "k"]), 2, "equal counts: file order")
        XCTAssertEqual(table.matchedLine("/api?v=1"), 4)
        XCTAssertEqual(table.matchedLine("/api"), 1)
    }

    func testFallsThroughToLessSpecificPatterns() throws {
        let table = try F.compile([
            F.route("/api/{x}", line: 1, headers: ["x-key": "k"]), F.route("/api/", line: 2, methods: ["POST"]),
            F.route("/", line: 3),
        ])
        XCTAssertEqual(table.matchedLine("/api/1", headers: ["x-key": "k"]), 1)
        XCTAssertEqual(table.matchedLine("/api/1", method: "POST"), 2)
        XCTAssertEqual(table.matchedLine("/api/1", method: "GET"), 3)
    }
}

final class RoutingConflictTests: XCTestCase {
    func testSameShapeIsAConflictNamingBothLines() {
        let diagnostics = F.diagnostics([F.host(["a"], routes: [F.route("/users/{id}", line: 8), F.route("/users/{name}", line: 12)])])
        XCTAssertEqual(diagnostics, [
            "routes.yaml:12:11: error: route pattern '/users/{name}' at routes.yaml:12:11 conflicts with '/users/{id}' at routes.yaml:8:11",
        ])
    }

    func testSubtreeAndRestCaptureAreTheSameShape() {
        let diagnostics = F.diagnostics([F.host(["a"], routes: [F.route("/f/", line: 1), F.route("/f/{rest...}", line: 2)])])
        XCTAssertEqual(diagnostics.count, 1)
        XCTAssertTrue(diagnostics.first?.contains("conflicts with '/f/' at routes.yaml:1:11") == true, "\(diagnostics)")
    }

    func testEveryConflictIsReported() {
        let diagnostics = F.diagnostics([
            F.host(["a"], routes: [F.route("/x", line: 1), F.route("/x", line: 2), F.route("/y/", line: 3), F.route("/y/", line: 4)]),
            F.host(["b"], routes: [F.route("/x", line: 5, methods: ["GET"]), F.route("/x", line: 6, methods: ["GET", "HEAD"])]),
        ])
        XCTAssertEqual(diagnostics.count, 3, "\(diagnostics)")
    }

    func testRoutesThatDifferInConditionsOrHostsDoNotConflict() throws {
        let table = try F.compile([
            F.host(["a"], routes: [
                F.route("/x", line: 1, methods: ["GET"]), F.route("/x", line: 2, methods: ["POST"]),
                F.route("/x", line: 3, headers: ["h": "1"]), F.route("/x", line: 4, query: ["q": "1"]),
                F.route("/x", line: 5, body: [("$.a", .int(1))]), F.route("/x/", line: 6), F.route("/{p}", line: 7),
            ]),
            F.host(["b"], routes: [F.route("/x", line: 8)]),
        ])
        XCTAssertEqual(table.hosts.map(\.routeCount), [7, 1])
    }
}

final class RoutingMethodTests: XCTestCase {
    func testMethodNotAllowedListsTheMethodsOfRoutesFailingOnlyOnTheMethod() throws {
        let table = try F.compile([
            F.route("/items", line: 1, methods: ["GET"]), F.route("/items", line: 2, methods: ["POST"]),
            F.route("/items", line: 3, methods: ["PATCH"], headers: ["x-admin": "1"]), F.route("/{x}/", line: 4, methods: ["PUT"]),
        ])
        guard case .methodNotAllowed(let allow) = table.route(F.request("DELETE", "/items")).lookup else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(allow, ["GET", "HEAD", "OPTIONS", "POST", "PUT"])
        guard case .notFound = table.route(F.request("GET", "/")).lookup else { return XCTFail("expected 404") }
    }

    func testHeadIsAcceptedWhereverGetIs() throws {
        let table = try F.compile([F.route("/a", line: 1, methods: ["GET"]), F.route("/b", line: 2, methods: ["POST"])])
        XCTAssertEqual(table.matchedLine("/a", method: "HEAD"), 1)
        XCTAssertNil(table.matchedLine("/b", method: "HEAD"))
        XCTAssertEqual(table.hosts[0].routes[0].methods, ["GET", "HEAD"])
    }

    func testAnyMethodWhenMethodsAreNotGiven() throws {
        let table = try F.compile([F.route("/a", line: 1)])
        for method in ["GET", "POST", "OPTIONS", "BREW"] { XCTAssertEqual(table.matchedLine("/a", method: method), 1) }
    }
}

final class RoutingConditionTests: XCTestCase {
    func testHeadersAreExactWithCaseInsensitiveNames() throws {
        let table = try F.compile([F.route("/a", line: 1, headers: ["x-api-key": "secret"])])
        XCTAssertEqual(table.matchedLine("/a", headers: ["X-API-Key": "secret"]), 1)
        XCTAssertEqual(table.matchedLine("/a", headers: ["X-Other": "1", "x-api-key": "nope", "X-Api-Key": "secret"]), 1)
        XCTAssertNil(table.matchedLine("/a", headers: ["X-API-Key": "Secret"]))
        XCTAssertNil(table.matchedLine("/a"))
    }

    func testQueryValuesAreDecoded() throws {
        let table = try F.compile([F.route("/a", line: 1, query: ["format": "json", "q": "a b"])])
        XCTAssertEqual(table.matchedLine("/a?format=j%73on&q=a+b"), 1)
        XCTAssertNil(table.matchedLine("/a?format=json"))
    }

    func testBodyJSONPaths() throws {
        let table = try F.compile([
            F.route("/a", line: 1, body: [("$.user.role", .string("admin")), ("$.items[1].id", .int(2))]),
            F.route("/a", line: 2, body: [("$.flag", .bool(true)), ("$.gone", .null)]),
            F.route("/a", line: 3, body: [("$.ratio", .double(0.5))]),
            F.route("/a", line: 4, body: [("$", .string("1"))]),
        ])
        XCTAssertEqual(table.matchedLine("/a", method: "POST", body: #"{"user": {"role": "admin"}, "items": [{"id": 1}, {"id": 2.0}]}"#), 1)
        XCTAssertNil(table.matchedLine("/a", method: "POST", body: #"{"user": {"role": "admin"}, "items": [{"id": 1}]}"#))
        XCTAssertNil(table.matchedLine("/a", method: "POST", body: #"{"user": {"role": "admin"}, "items": [{"id": 1}, {"id": "2"}]}"#))
        XCTAssertEqual(table.matchedLine("/a", method: "POST", body: #"{"flag": true, "gone": null}"#), 2)
        XCTAssertNil(table.matchedLine("/a", method: "POST", body: #"{"flag": 1, "gone": null}"#), "1 is no boolean")
        XCTAssertEqual(table.matchedLine("/a", method: "POST", body: #"{"ratio": 0.5}"#), 3)
        XCTAssertEqual(table.matchedLine("/a", method: "POST", body: #""1""#), 4)
        XCTAssertNil(table.matchedLine("/a", method: "POST", body: "1"), "a YAML string never equals a JSON number")
        XCTAssertNil(table.matchedLine("/a", method: "POST", body: "not json"))
        XCTAssertNil(table.matchedLine("/a", method: "POST"))
    }

    func testInvalidBodyJSONPathIsAnError() {
        let diagnostics = F.diagnostics([F.host(["a"], routes: [F.route("/a", line: 7, body: [("$.items[x]", .int(1))])])])
        XCTAssertEqual(diagnostics.count, 1)
        XCTAssertTrue(diagnostics.first?.contains("invalid body_json path '$.items[x]'") == true, "\(diagnostics)")
    }

    func testJSONPathSyntax() {
        XCTAssertEqual(JSONPathStep.parse("$"), [])
        XCTAssertEqual(JSONPathStep.parse("$.a.b[0].c"), [.key("a"), .key("b"), .index(0), .key("c")])
        XCTAssertEqual(JSONPathStep.parse("$[3][1]"), [.index(3), .index(1)])
        for bad in ["a.b", "$.", "$..a", "$[", "$[-1]", "$a"] { XCTAssertNil(JSONPathStep.parse(bad), bad) }
    }
}

final class RoutingHostTests: XCTestCase {
    private func table() throws -> RoutingTable {
        try F.compile([
            F.host(["example.com", "www.example.com"], line: 1, routes: [F.route("/", line: 2)]),
            F.host(["*.example.org"], line: 3, routes: [F.route("/", line: 4)]),
            F.host(["*.api.example.org", "api.example.org"], isDefault: true, line: 5, routes: [F.route("/", line: 6)]),
            F.host(["*"], line: 7, routes: [F.route("/", line: 8)]),
        ])
    }

    func testExactWildcardAndStar() throws {
        let table = try table()
        let expectations: [(String, Int)] = [
            ("example.com", 1), ("www.example.com", 1), ("a.example.org", 3), ("a.b.example.org", 3),
            ("v1.api.example.org", 5), ("api.example.org", 5), ("example.org", 7), ("elsewhere.net", 7),
        ]
        for (name, line) in expectations { XCTAssertEqual(table.host(named: name).location.line, line, name) }
    }

    func testPortAndCaseAreIgnored() throws {
        let table = try table()
        XCTAssertEqual(table.host(named: "WWW.Example.COM:8080").location.line, 1)
        XCTAssertEqual(table.host(named: "example.com.").location.line, 1)
        XCTAssertEqual(table.route(F.request("GET", "/", host: "A.Example.Org:443")).host.location.line, 3)
    }

    func testDefaultHostWhenNothingMatches() throws {
        let marked = try F.compile([
            F.host(["a.com"], line: 1, routes: []), F.host(["b.com"], isDefault: true, line: 2, routes: []),
        ])
        XCTAssertEqual(marked.host(named: "c.com").location.line, 2)
        XCTAssertEqual(marked.host(named: "[::1]:8080").location.line, 2)
        let unmarked = try F.compile([F.host(["a.com"], line: 1, routes: []), F.host(["b.com"], line: 2, routes: [])])
        XCTAssertEqual(unmarked.host(named: "c.com").location.line, 1)
    }

    func testNoHostsIsAnError() {
        XCTAssertEqual(F.diagnostics([]), ["error: the configuration has no hosts"])
    }
}

final class RoutingMiddlewareTests: XCTestCase {
    func testHostThenRouteMiddlewareWithStacksExpanded() throws {
        let stacks = ["base": [F.builtin("request_id"), F.stack("security")], "security": [F.builtin("cors"), F.builtin("headers")]]
        let table = try F.compile([
            F.host(["a"], middleware: [F.stack("base")], routes: [
                F.route("/x", line: 1, middleware: [F.builtin("compress"), F.stack("security")]), F.route("/y", line: 2),
            ]),
        ], stacks: stacks)
        let routes = table.hosts[0].routes
        XCTAssertEqual(routes[0].middlewareNames, ["request_id", "cors", "headers", "compress", "cors", "headers"])
        XCTAssertEqual(routes[1].middlewareNames, ["request_id", "cors", "headers"])
        XCTAssertEqual(table.hosts[0].middlewareNames, ["request_id", "cors", "headers"])
    }

    /// Server-wide → host → route on the way in, the reverse on the way out; routing's own
    /// answers (404, 405, OPTIONS) pass through the server-wide and host middleware only.
    func testChainOrderAndRoutingAnswersInsideHostMiddleware() throws {
        let table = try F.compile([
            F.host(["a"], middleware: [F.builtin("cors")], routes: [
                F.route("/x", line: 1, methods: ["GET"], middleware: [F.builtin("compress"), F.builtin("headers")]),
            ]),
        ], serverMiddleware: [F.builtin("request_id")])
        func trace(_ method: String, _ path: String) -> (status: Int, inward: [String], outward: [String]) {
            var request = F.request(method, path, host: "a")
            let response = table.respond(to: &request)
            return (response.status, request.headers.values("X-Trace"), response.headers.values("X-Trace"))
        }
        let routed = trace("GET", "/x")
        XCTAssertEqual(routed.status, 200)
        XCTAssertEqual(routed.inward, ["in:request_id", "in:cors", "in:compress", "in:headers"])
        XCTAssertEqual(routed.outward, ["out:headers", "out:compress", "out:cors", "out:request_id"])
        for (method, path, status) in [("GET", "/missing", 404), ("POST", "/x", 405), ("OPTIONS", "/x", 204)] {
            let answer = trace(method, path)
            XCTAssertEqual(answer.status, status, "\(method) \(path)")
            XCTAssertEqual(answer.inward, ["in:request_id", "in:cors"], "\(method) \(path)")
            XCTAssertEqual(answer.outward, ["out:cors", "out:request_id"], "\(method) \(path)")
        }
    }

    func testBodyLimitsKnownBeforeTheBodyIsRead() throws {
        let table = try F.compile([
            F.host(["a"], middleware: [F.builtin("body_limit", bodyLimit: 4096)], routes: [
                F.route("/small", line: 1, middleware: [F.builtin("body_limit", bodyLimit: 10)]),
                F.route("/big", line: 2, middleware: [F.builtin("body_limit", bodyLimit: 1 << 20)]),
            ]),
            F.host(["b"], line: 10, routes: [F.route("/", line: 11)]),
        ])
        XCTAssertEqual(table.bodyIntake(for: F.request("POST", "/small", host: "a"), length: 100).limit, 10)
        XCTAssertEqual(table.bodyIntake(for: F.request("POST", "/big", host: "a"), length: 100).limit, 4096, "the host's limit still holds")
        XCTAssertEqual(table.bodyIntake(for: F.request("POST", "/none", host: "a"), length: 100).limit, 4096)
        XCTAssertNil(table.bodyIntake(for: F.request("POST", "/", host: "b"), length: 100).limit)
    }

    func testStackCyclesAndUnknownStacksAreErrors() {
        let stacks = ["a": [F.stack("b", line: 10)], "b": [F.builtin("cors"), F.stack("a", line: 11)]]
        let diagnostics = F.diagnostics([
            F.host(["h"], middleware: [F.stack("a", line: 9)], routes: [
                F.route("/", line: 1, middleware: [F.stack("b"), F.stack("missing", line: 12)]),
            ]),
        ], stacks: stacks)
        XCTAssertEqual(diagnostics, [
            "routes.yaml:11:9: error: middleware stack 'a' includes itself (a → b → a)",
            "routes.yaml:12:9: error: unknown middleware stack 'missing' (defined stacks: a, b)",
        ])
    }
}

final class RoutingReportTests: XCTestCase {
    private func table() throws -> RoutingTable {
        try F.compile([
            F.host(["example.com", "*.example.com"], line: 1, middleware: [F.builtin("request_id")], routes: [
                F.route("/users/{id}", line: 8, methods: ["GET"], middleware: [F.builtin("cors")]),
                F.route("/users/{id}", line: 12, methods: ["DELETE"], headers: ["x-admin": "yes"]),
                F.route("/users/{name}", line: 14, body: [("$.role", .string("admin"))]),
                F.route("/", line: 20, handler: .static(StaticConfig(root: "/srv"))),
            ]),
            F.host(["other.net"], isDefault: true, line: 30, routes: []),
        ], stacks: [:])
    }

    func testExplainNamesHostRouteParamsMiddlewareAndNearMisses() throws {
        let text = try table().explain(F.request("GET", "/users/42", host: "www.example.com"))
        let expected = """
            request: GET /users/42 (host 'www.example.com')
            host: example.com, *.example.com at routes.yaml:1:5: wildcard '*.example.com' (no exact name matched)
            route: /users/{id} at routes.yaml:8:11 → respond
            params: id=42
            middleware: request_id → cors
            not chosen:
              /users/{id} at routes.yaml:12:11: method GET not allowed (allows DELETE); header 'x-admin' is missing, needs 'yes'
              /users/{name} at routes.yaml:14:11: body is not JSON (needed for body_json)
              / at routes.yaml:20:11: also matches, but '/users/{id}' is more specific

            """
        XCTAssertEqual(text, expected)
    }

    func testExplainSaysWhyTheSameRouteShapeLost() throws {
        let text = try table().explain(F.request("DELETE", "/users/7", host: "example.com", headers: ["X-Admin": "yes"],
                                                 body: #"{"role": "admin"}"#))
        XCTAssertTrue(text.contains("host: example.com, *.example.com at routes.yaml:1:5: exact name 'example.com'"), text)
        XCTAssertTrue(text.contains("route: /users/{id} at routes.yaml:12:11 → respond"), text)
        XCTAssertTrue(text.contains("/users/{name} at routes.yaml:14:11: also accepts, but '/users/{id}' at routes.yaml:12:11 is tried first"), text)
        XCTAssertTrue(text.contains("body_json") == false, text)
    }

    func testExplainOfMethodNotAllowedAndNotFound() throws {
        let table = try F.compile([F.route("/a", line: 1, methods: ["GET"]), F.route("/b/", line: 2)])
        let notAllowed = table.explain(F.request("POST", "/a"))
        XCTAssertTrue(notAllowed.contains("route: none → 405 Method Not Allowed (Allow: GET, HEAD, OPTIONS)"), notAllowed)
        XCTAssertTrue(notAllowed.contains("/a at routes.yaml:1:11: method POST not allowed (allows GET, HEAD)"), notAllowed)
        let notFound = table.explain(F.request("GET", "/c", host: "unknown.org"))
        XCTAssertTrue(notFound.contains("default host (no name matched)"), notFound)
        XCTAssertTrue(notFound.contains("route: none → 404 Not Found (no route matches /c)"), notFound)
        XCTAssertFalse(notFound.contains("not chosen"), notFound)
    }

    func testExplainOfSubtreeRootWithoutSlash() throws {
        let table = try F.compile([F.route("/", line: 1), F.route("/docs/", line: 2)])
        let text = table.explain(F.request("GET", "/docs"))
        XCTAssertTrue(text.contains("route: /docs/ at routes.yaml:2:11"), text)
        XCTAssertTrue(text.contains("/ at routes.yaml:1:11: also matches, but '/docs' is the root of the subtree '/docs/'"), text)
    }

    func testRenderRoutes() throws {
        let text = try table().renderRoutes()
        let lines = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertEqual(lines, [
            "HOST PATTERN METHODS CONDITIONS HANDLER MIDDLEWARE LOCATION",
            "example.com,*.example.com /users/{id} GET,HEAD - respond request_id,cors routes.yaml:8",
            "example.com,*.example.com /users/{id} DELETE header x-admin=yes respond request_id routes.yaml:12",
            #"example.com,*.example.com /users/{name} * body $.role="admin" respond request_id routes.yaml:14"#,
            "example.com,*.example.com / * - static request_id routes.yaml:20",
            "other.net (default) (no routes)",
        ])
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertFalse(text.contains(" \n"), "no trailing blanks")
    }
}
