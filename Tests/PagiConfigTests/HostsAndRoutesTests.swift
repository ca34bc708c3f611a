import XCTest
@testable import PagiConfig

final class HostsAndRoutesTests: XCTestCase {
    func testHostAndRouteFields() throws {
        let yaml = """
        hosts:
          - names: [Example.COM, "*.example.org"]
            default: true
            routes:
              - path: /api/users/{id}
                methods: [get, Post]
                headers: {X-Api-Key: secret}
                query: {format: json}
                body_json: {"$.user.role": admin, "$.count": 3, "$.ok": true}
                static: .
          - names: "*"
            routes: []
        """
        let config = try loadConfig(yaml)
        XCTAssertEqual(config.hosts.count, 2)
        let host = config.hosts[0]
        XCTAssertEqual(host.names, ["example.com", "*.example.org"])
        XCTAssertTrue(host.isDefault)
        XCTAssertEqual(host.location, SourceLocation(file: "config.yaml", line: 2, column: 5))
        XCTAssertEqual(config.hosts[1].names, ["*"])
        XCTAssertFalse(config.hosts[1].isDefault)
        let route = try XCTUnwrap(host.routes.first)
        XCTAssertEqual(route.path, "/api/users/{id}")
        XCTAssertEqual(route.pathLocation, SourceLocation(file: "config.yaml", line: 5, column: 15))
        XCTAssertEqual(route.location, SourceLocation(file: "config.yaml", line: 5, column: 9))
        XCTAssertEqual(route.handlerLocation, SourceLocation(file: "config.yaml", line: 10, column: 9))
        XCTAssertEqual(route.methods, ["GET", "POST"])
        XCTAssertEqual(route.headers, ["x-api-key": "secret"])
        XCTAssertEqual(route.query, ["format": "json"])
        XCTAssertEqual(route.bodyJSON.map(\.path), ["$.user.role", "$.count", "$.ok"])
        XCTAssertEqual(route.bodyJSON.map(\.value), [.string("admin"), .int(3), .bool(true)])
        XCTAssertEqual(route.conditionCount, 6)
        XCTAssertEqual(route.handler.name, "static")
        XCTAssertEqual(config.files, [ConfigBuilder.absolutePath("config.yaml")])
    }

    /// Paths in a config are made absolute against its file's directory and normalised the way
    /// `URL.standardized` does (no symbolic links followed).
    func testPathsAreResolvedAgainstTheConfigFileAndNormalised() {
        XCTAssertEqual(ConfigBuilder.absolutePath("/a/./b//c/../d/"), "/a/b/d")
        XCTAssertEqual(ConfigBuilder.absolutePath("/../.."), "/")
        XCTAssertEqual(ConfigBuilder.absolutePath("/a/.../b/..c"), "/a/.../b/..c")
        XCTAssertEqual(ConfigBuilder.absolutePath("/srv/wéb/ü"), "/srv/wéb/ü")
        XCTAssertEqual(ConfigBuilder.resolve("www/../static", relativeTo: "/etc/pagi/config.yaml"), "/etc/pagi/static")
        XCTAssertEqual(ConfigBuilder.resolve("../www", relativeTo: "/etc/pagi/./conf.d/site.yaml"), "/etc/pagi/www")
        XCTAssertEqual(ConfigBuilder.resolve("/srv/./www", relativeTo: "/etc/pagi/config.yaml"), "/srv/www")
        XCTAssertEqual(ConfigBuilder.resolve("www", relativeTo: "/config.yaml"), "/www")
        let here = FileManager.default.currentDirectoryPath
        XCTAssertEqual(ConfigBuilder.resolve("www", relativeTo: "config.yaml"), ConfigBuilder.absolutePath(here + "/www"))
    }

    func testDuplicateHostNamesAndTwoDefaults() {
        let yaml = """
        hosts:
          - names: [a.com, b.com]
            default: true
          - names: [B.com]
            default: true
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:4:5: error: two hosts are marked default: true (config.yaml:2:5 and config.yaml:4:5)",
            "config.yaml:4:5: error: host name 'b.com' is already used by the host at config.yaml:2:5",
        ])
    }

    /// A host's certificate, read relative to the file; a certificate no TLS listener offers is
    /// pointed out.
    func testHostTLSIsParsed() throws {
        let directory = try TemporaryDirectory()
        for file in ["a.crt", "a.key", "ca.pem"] { _ = try directory.write(file, "PEM") }
        chmod(directory.path + "/a.key", 0o600)
        let yaml = """
        hosts:
          - names: [a.com]
            tls: {cert: a.crt, key: a.key, client_auth: optional, client_ca: ca.pem}
        """
        let config = try loadConfig(yaml, file: directory.path + "/config.yaml")
        XCTAssertEqual(config.hosts[0].tls?.cert, directory.path + "/a.crt")
        XCTAssertEqual(config.hosts[0].tls?.key, directory.path + "/a.key")
        XCTAssertEqual(config.hosts[0].tls?.clientAuth, .optional)
        XCTAssertEqual(config.hosts[0].tls?.minVersion, "1.2")
        XCTAssertEqual(warningMessages(config), [directory.path + "/config.yaml:3:10: warning: a certificate is configured but no listener serves TLS: "
                                     + "add one, e.g. listen: [\"127.0.0.1:8080\", {address: \"127.0.0.1:8443\", tls: true}]"])
    }

    func testHostNameErrors() {
        let yaml = """
        hosts:
          - names: [good.com, "bad name", 42x..com]
          - routes: []
          - names: [c.com]
            tsl: {}
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:23: error: invalid host name 'bad name' (expected e.g. example.com, *.example.com or *)",
            "config.yaml:2:35: error: invalid host name '42x..com' (expected e.g. example.com, *.example.com or *)",
            "config.yaml:3:5: error: host has no 'names' (give it names, or mark it default: true)",
            "config.yaml:5:5: error: unknown key 'tsl' in host (did you mean 'tls'?)",
        ])
    }

    func testZeroAndTwoHandlers() {
        let yaml = """
        hosts:
          - names: [a.com]
            routes:
              - path: /a
              - path: /b
                static: .
                respond: {status: 204}
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:4:9: error: route has no handler (one of: static, respond, redirect, proxy, websocket, sse, publish, openapi, health, metrics)",
            "config.yaml:7:9: error: route has more than one handler: 'static' (line 6) and 'respond' (line 7)",
        ])
    }

    func testPathPatternSyntax() {
        let valid = ["/", "/about", "/docs/", "/users/{id}", "/files/{rest...}", "/{$}", "/a/{x}/b/{y}", "/{_a1}/"]
        for pattern in valid {
            XCTAssertNoThrow(try RoutePattern(parsing: pattern), pattern)
        }
        let invalid = [
            "about": "it must start with '/'",
            "/a{id}": "'{…}' must be a whole segment, got 'a{id}'",
            "/{}": "'{…}' must be a whole segment, got '{}'",
            "/{rest...}/x": "'{rest...}' must be the last segment",
            "/a/{$}": "'{$}' is only allowed as '/{$}'",
            "/{1d}": "invalid parameter name '1d' (letters, digits and '_')",
            "/{a}/{a}": "duplicate parameter name 'a'",
            "/a//b": "empty segment ('//')",
            "/a/{x}/{x...}": "duplicate parameter name 'x'",
        ]
        for (pattern, problem) in invalid {
            XCTAssertThrowsError(try RoutePattern(parsing: pattern), pattern) { error in
                XCTAssertEqual((error as? PatternError)?.message, problem, pattern)
            }
        }
        let parsed = try? RoutePattern(parsing: "/files/{dir}/{rest...}")
        XCTAssertEqual(parsed?.parameterNames, ["dir"])
        XCTAssertEqual(parsed?.restName, "rest")
        XCTAssertTrue(parsed?.captures("rest") ?? false)
        XCTAssertFalse(parsed?.isPlainSubtree ?? true)
        XCTAssertTrue((try? RoutePattern(parsing: "/api/"))?.isPlainSubtree ?? false)
    }

    func testRouteErrors() {
        let yaml = """
        hosts:
          - names: [a.com]
            routes:
              - path: users/{id}
                static: .
              - path: /x
                methods: [GET, "BAD METHOD"]
                body_json: {user: 1, "$.list": [1]}
                headers: {X-A: {b: c}}
                static: .
              - static: .
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:4:15: error: invalid path pattern 'users/{id}': it must start with '/'",
            "config.yaml:7:24: error: invalid HTTP method 'BAD METHOD'",
            "config.yaml:8:21: error: body_json keys are JSON paths starting with '$' (like $.user.role), got 'user'",
            "config.yaml:8:40: error: expected a scalar value for '$.list', got a list",
            "config.yaml:9:24: error: expected a value for 'X-A', got a mapping",
            "config.yaml:11:9: error: missing required key 'path' in route",
        ])
    }

    func testStaticHandler() throws {
        let directory = try TemporaryDirectory()
        try directory.makeDirectory("site/public")
        try directory.write("errors/404.html", "<h1>gone</h1>")
        try directory.write("srv/503.html", "<h1>later</h1>")
        let yaml = """
        hosts:
          - names: [a.com]
            errors: {404: errors/404.html, 503: \(directory.path)/srv/503.html}
            routes:
              - path: /short/
                static: site/public
              - path: /full/
                static:
                  root: ./site/../site/public
                  index: [index.htm, default.html]
                  listing: true
                  fallback: /index.html
                  precompressed: [gzip]
                  cache_control: "public, max-age=3600"
                  dotfiles: allow
                  follow_symlinks: never
        """
        let config = try loadConfig(yaml, file: directory.path + "/config.yaml")
        let host = try XCTUnwrap(config.hosts.first)
        XCTAssertEqual(host.errorPages, [404: directory.path + "/errors/404.html", 503: directory.path + "/srv/503.html"])
        guard case .static(let short) = host.routes[0].handler, case .static(let full) = host.routes[1].handler else {
            return XCTFail("expected static handlers")
        }
        XCTAssertEqual(short, StaticConfig(root: directory.path + "/site/public"))
        XCTAssertEqual(short.index, ["index.html"])
        XCTAssertEqual(short.precompressed, [.br, .zstd, .gzip])
        XCTAssertEqual(short.dotfiles, .deny)
        XCTAssertEqual(short.followSymlinks, .inside)
        XCTAssertFalse(short.listing)
        XCTAssertEqual(full.root, directory.path + "/site/public")
        XCTAssertEqual(full.index, ["index.htm", "default.html"])
        XCTAssertTrue(full.listing)
        XCTAssertEqual(full.fallback, "/index.html")
        XCTAssertEqual(full.precompressed, [.gzip])
        XCTAssertEqual(full.cacheControl, "public, max-age=3600")
        XCTAssertEqual(full.dotfiles, .allow)
        XCTAssertEqual(full.followSymlinks, .never)
        XCTAssertEqual(config.warnings, [])
    }

    func testStaticErrors() throws {
        let directory = try TemporaryDirectory()
        try directory.write("file.txt", "x")
        let yaml = """
        hosts:
          - names: [a.com]
            routes:
              - {path: /a/, static: missing}
              - {path: /b/, static: file.txt}
              - {path: /c/, static: {index: x}}
              - {path: /d/, static: {root: ., fallback: index.html, precompressed: [br, lzma], listing: maybe}}
        """
        XCTAssertEqual(errors(yaml, file: directory.path + "/config.yaml").map { $0.replacingOccurrences(of: directory.path, with: "DIR") }, [
            "DIR/config.yaml:4:29: error: static root 'missing' does not exist",
            "DIR/config.yaml:5:29: error: static root 'file.txt' is not a directory",
            "DIR/config.yaml:6:29: error: missing required key 'root' in static",
            "DIR/config.yaml:7:49: error: fallback must be a URL path starting with '/', got 'index.html'",
            "DIR/config.yaml:7:81: error: invalid value 'lzma' for precompressed (expected one of: br, zstd, gzip)",
            "DIR/config.yaml:7:97: error: expected true or false, got 'maybe'",
        ])
    }
}
