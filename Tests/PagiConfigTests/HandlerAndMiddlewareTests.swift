import XCTest
@testable import PagiConfig

final class HandlerAndMiddlewareTests: XCTestCase {
    func testOtherHandlersKeepTheirOptionsAndWarn() throws {
        let directory = try TemporaryDirectory()
        let yaml = """
        hosts:
          - names: [a.com]
            routes:
              - path: /stub
                respond: {status: 201, headers: {X-A: b}, file: stubs/user.json, template: true, delay: {min: 50ms, max: 1s}, throttle: 10KiB/s}
              - path: /old
                redirect: /new
              - path: /proxy/
                proxy: {to: [http://127.0.0.1:9001], balance: least_conn, health: {path: /healthz, interval: 5s}, timeout: 30s}
              - path: /ws
                websocket: echo
              - path: /events
                sse: {ticker: {every: 1s, data: "{{now}}"}, replay: 10}
              - path: /publish
                publish: news
              - path: /api/
                openapi: {spec: api/openapi.yaml, validate: true}
              - path: /metrics
                metrics: prometheus
              - path: /seq
                respond: [{body: one}, {body: two}]
                cycle: true
        """
        let config = try loadConfig(yaml, file: directory.path + "/config.yaml")
        let handlers = config.hosts[0].routes.map(\.handler)
        XCTAssertEqual(handlers.map(\.name), ["respond", "redirect", "proxy", "websocket", "sse", "publish", "openapi", "metrics", "respond"])
        guard case .respond(let stub) = handlers[0], case .redirect(let redirect) = handlers[1], case .proxy(let proxy) = handlers[2],
              case .websocket(let websocket) = handlers[3], case .sse(let sse) = handlers[4], case .publish(let channel) = handlers[5],
              case .openapi(let openapi) = handlers[6], case .respond(let list) = handlers[8]
        else { return XCTFail("unexpected handlers \(handlers.map(\.name))") }
        let first = try XCTUnwrap(stub.responses.first)
        XCTAssertEqual(first.status, 201)
        XCTAssertEqual(first.headers, [HeaderPair(name: "X-A", value: "b")])
        guard case .file(let file, let templated)? = first.body else { return XCTFail("expected a file body") }
        XCTAssertEqual(file, directory.path + "/stubs/user.json")
        XCTAssertTrue(templated)
        XCTAssertEqual(first.delay, .between(min: .milliseconds(50), max: .seconds(1)))
        XCTAssertEqual(first.bytesPerSecond, 10 * 1024)
        XCTAssertEqual(redirect, RedirectOptions(to: "/new"))
        XCTAssertEqual(redirect.status, 302)
        XCTAssertEqual(proxy.upstreams, ["http://127.0.0.1:9001"])
        XCTAssertEqual(proxy.balance, .leastConn)
        XCTAssertEqual(proxy.health?.path, "/healthz")
        XCTAssertEqual(websocket, WebSocketConfig())
        XCTAssertEqual(sse.source, .ticker(every: .seconds(1), data: "{{now}}", event: nil))
        XCTAssertEqual(sse.replay, 10)
        XCTAssertEqual(channel, "news")
        XCTAssertEqual(openapi.spec, directory.path + "/api/openapi.yaml")
        XCTAssertTrue(openapi.validate)
        XCTAssertEqual(list.responses.count, 2)
        XCTAssertTrue(list.cycle)
        // Every handler is served, proxy's health checks included: nothing to warn about.
        XCTAssertEqual(config.warnings.map(\.description), [])
        XCTAssertEqual(proxy.health?.rise, 2)
        XCTAssertEqual(proxy.health?.fall, 3)
    }

    func testRespondListWithoutCycleAndWebSocketMapping() throws {
        let yaml = """
        hosts:
          - names: [a.com]
            routes:
              - {path: /a, respond: [{status: 503}, {json: {ok: true, n: 1.5, s: "1"}}]}
              - {path: /b, websocket: {broadcast: "chat:{{path.room}}", ping_interval: 30s, origins: [https://A.com]}}
        """
        let routes = try loadConfig(yaml).hosts[0].routes
        guard case .respond(let list) = routes[0].handler, case .websocket(let websocket) = routes[1].handler else {
            return XCTFail("unexpected handlers")
        }
        XCTAssertFalse(list.cycle)
        XCTAssertEqual(list.responses.map(\.status), [503, 200])
        guard case .json(let json)? = list.responses[1].body else { return XCTFail("expected json") }
        XCTAssertEqual(json, .map([(key: "ok", value: .bool(true)), (key: "n", value: .double(1.5)), (key: "s", value: .string("1"))]))
        XCTAssertEqual(websocket.mode, .broadcast("chat:{{path.room}}"))
        XCTAssertEqual(websocket.pingInterval, 30)
        XCTAssertEqual(websocket.origins, ["https://a.com"])
    }

    func testHandlerOptionErrors() {
        let yaml = """
        hosts:
          - names: [a.com]
            routes:
              - {path: /a, respond: {status: 999, body: x, json: {}, fault: rest, delay: soon}}
              - {path: /b, proxy: {to: [ftp://x], balance: fastest}}
              - {path: /c, websocket: {max_message: huge}}
              - {path: /d, sse: {subscribe: a, ticker: {data: x}}}
              - {path: /e, health: false}
              - {path: /f, metrics: statsd, cycle: true}
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:4:38: error: invalid status code '999' (expected 100–599)",
            "config.yaml:4:52: error: respond takes only one of 'json', 'body', 'file', got 'body' and 'json'",
            "config.yaml:4:69: error: invalid value 'rest' for fault (did you mean 'reset'?)",
            "config.yaml:4:82: error: expected a duration like 10s, got 'soon'",
            "config.yaml:5:33: error: invalid upstream 'ftp://x' (expected a URL like http://127.0.0.1:9001)",
            "config.yaml:5:52: error: invalid value 'fastest' for balance (expected one of: round_robin, least_conn, random, ip_hash)",
            "config.yaml:6:31: error: websocket needs one of: echo, broadcast, subscribe",
            "config.yaml:6:45: error: expected a size like 16KiB, got 'huge'",
            "config.yaml:7:40: error: sse takes only one of 'subscribe', 'ticker', got 'subscribe' and 'ticker'",
            "config.yaml:7:48: error: missing required key 'every' in ticker",
            "config.yaml:8:28: error: health: expected true (remove the route to turn it off)",
            "config.yaml:9:29: error: invalid value 'statsd' for metrics (expected one of: prometheus)",
            "config.yaml:9:37: error: 'cycle' only applies when 'respond' is a list of responses",
        ])
    }

    func testMiddlewareItemsAndStacks() throws {
        let directory = try TemporaryDirectory()
        try "# users\nbob:$2b$04$abcdefghijklmnopqrstuu5Jd0sVkKJ5qJ9M2t0Wq0tYfXq9nQmDa\n".write(
            toFile: directory.path + "/.htpasswd", atomically: true, encoding: .utf8)
        let yaml = """
        middleware:
          secure:
            - {headers: {set: {X-Frame-Options: DENY}, remove: [Server], request: {set: {X-A: b}}}}
            - request_id
          api: [secure, {cors: {origins: ["https://a.com"], credentials: true, max_age: 10m}}]
        hosts:
          - names: [a.com]
            middleware: [api, {basic_auth: {realm: admin, htpasswd: .htpasswd}}]
            routes:
              - path: /
                middleware: [{rate_limit: {rate: 10/s, burst: 20, key: "header:X-Key"}}, {compress: {min_size: 1KiB}}, {body_limit: 1MiB}, {ip_filter: {allow: [10.0.0.0/8]}}, {rewrite: {from: "^/old/(.*)$", to: "/new/$1"}}]
                static: .
        """
        let config = try loadConfig(yaml, file: directory.path + "/config.yaml")
        XCTAssertEqual(config.middlewareStacks["secure"]?.map(\.name), ["headers", "request_id"])
        XCTAssertEqual(config.middlewareStacks["api"]?.map(\.name), ["secure", "cors"])
        let host = config.hosts[0]
        XCTAssertEqual(host.middleware.map(\.name), ["api", "basic_auth"])
        guard case .stack("api") = host.middleware[0].kind, case .builtin(.basicAuth(let auth)) = host.middleware[1].kind else {
            return XCTFail("unexpected kinds")
        }
        XCTAssertEqual(auth.htpasswd, directory.path + "/.htpasswd")
        XCTAssertEqual(auth.realm, "admin")
        XCTAssertEqual(auth.users, ["bob": "$2b$04$abcdefghijklmnopqrstuu5Jd0sVkKJ5qJ9M2t0Wq0tYfXq9nQmDa"])
        XCTAssertTrue(config.files.contains(directory.path + "/.htpasswd"), "watched and re-read with the config")
        let route = host.routes[0].middleware
        XCTAssertEqual(route.map(\.name), ["rate_limit", "compress", "body_limit", "ip_filter", "rewrite"])
        XCTAssertEqual(route[2].location, SourceLocation(file: directory.path + "/config.yaml", line: 11, column: 112))
        guard case .builtin(.rateLimit(let rate)) = route[0].kind, case .builtin(.compress(let compress)) = route[1].kind,
              case .builtin(.bodyLimit(let limit)) = route[2].kind, case .builtin(.ipFilter(let filter)) = route[3].kind,
              case .builtin(.rewrite(let rewrite)) = route[4].kind
        else { return XCTFail("unexpected kinds") }
        XCTAssertEqual(rate.perSecond, 10)
        XCTAssertEqual(rate.burst, 20)
        XCTAssertEqual(rate.key, .header("x-key"))
        XCTAssertEqual(compress.minSize, 1024)
        XCTAssertEqual(compress.algorithms, [.gzip])
        XCTAssertEqual(limit, 1 << 20)
        XCTAssertEqual(filter.allow.map(\.description), ["10.0.0.0/8"])
        XCTAssertEqual(rewrite, RewriteOptions(from: "^/old/(.*)$", to: "/new/$1"))
        guard case .builtin(.cors(let cors)) = config.middlewareStacks["api"]?[1].kind else { return XCTFail("no cors") }
        XCTAssertEqual(cors.origins, ["https://a.com"])
        XCTAssertTrue(cors.credentials)
        XCTAssertEqual(cors.maxAge, 600)
        XCTAssertEqual(config.warnings.filter { $0.message.contains("middleware") }, [], "every middleware is implemented")
    }

    func testPasswordHashesThatCannotBeCheckedAreErrors() throws {
        let directory = try TemporaryDirectory()
        try "ok:$6$salt$hash\n\nold:$apr1$abc$def\nbroken line\nok:$2y$05$again\n".write(
            toFile: directory.path + "/.htpasswd", atomically: true, encoding: .utf8)
        let yaml = """
        hosts:
          - names: [a.com]
            middleware: [{basic_auth: {htpasswd: .htpasswd, users: {plain: secret}}}, {basic_auth: {htpasswd: missing}}]
            routes:
              - {path: /, static: .}
        """
        XCTAssertEqual(errors(yaml, file: directory.path + "/config.yaml").map { $0.replacingOccurrences(of: directory.path + "/", with: "") }, [
            "config.yaml:3:68: error: unsupported password hash for user 'plain' (expected bcrypt $2a$/$2b$/$2y$ or sha512-crypt $6$; make one with `pagi-serve hash-password`)",
            "config.yaml:3:103: error: cannot read htpasswd file 'missing'",
            ".htpasswd:3:1: error: unsupported password hash for user 'old' (expected bcrypt $2a$/$2b$/$2y$ or sha512-crypt $6$; make one with `pagi-serve hash-password`)",
            ".htpasswd:4:1: error: expected 'user:hash' in htpasswd file",
            ".htpasswd:5:1: error: user 'ok' is defined twice",
        ])
    }

    func testMiddlewareErrors() {
        let yaml = """
        middleware:
          loop: [loop]
          secure: [request_id]
        hosts:
          - names: [a.com]
            middleware: [secrue, cors, {corss: {}}, {headers: {sett: {}}}, {cors: {origins: "*", credentials: true}}]
            routes:
              - path: /
                middleware: [{rate_limit: {rate: fast, key: ip}}, {ip_filter: {allow: [10.0.0.0/33]}}, {rewrite: {from: "(", to: x}}, {basic_auth: {realm: x}}]
                static: .
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:3: error: middleware stack 'loop' includes itself (loop → loop)",
            "config.yaml:6:18: error: unknown middleware 'secrue' (did you mean 'secure'?)",
            "config.yaml:6:26: error: middleware 'cors' needs options, e.g. {cors: {...}}",
            "config.yaml:6:33: error: unknown middleware 'corss' (did you mean 'cors'?)",
            "config.yaml:6:56: error: unknown key 'sett' in headers (did you mean 'set'?)",
            "config.yaml:6:90: error: cors cannot allow origin '*' with credentials: true (list the origins)",
            "config.yaml:9:42: error: expected a rate like 10/s, 100/m or 1000/h (at most 1000000000/s), got 'fast'",
            "config.yaml:9:53: error: invalid rate_limit key 'ip' (expected client_ip or header:NAME)",
            "config.yaml:9:80: error: invalid CIDR '10.0.0.0/33' (expected e.g. 10.0.0.0/8 or fd00::/8)",
            "config.yaml:9:113: error: invalid regular expression '('",
            "config.yaml:9:122: error: rewrite target must be a path starting with '/', got 'x'",
            "config.yaml:9:140: error: basic_auth needs one of: users, htpasswd",
        ])
    }
}
