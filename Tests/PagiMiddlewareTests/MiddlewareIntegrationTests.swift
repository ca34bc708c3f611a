import CompressNIO
import Foundation
import NIOCore
import PagiMiddleware
import PagiTestSupport
import XCTest

/// Every middleware of docs/configuration.md §10 through the real server: the order of the chain,
/// answers routing gives itself, hostile and spoofed input.
final class MiddlewareIntegrationTests: XCTestCase {
    private static let text = String(repeating: "All work and no play makes Jack a dull boy.\n", count: 400)
    /// Over the static handler's in-memory limit, so it is sent from the file (compressed in chunks).
    private static let largeText = (0..<40_000).map { "line \($0) of a large file\n" }.joined()
    private static let hashes: (alice: String, bob: String, carol: String)? = {
        guard let alice = PasswordHash.bcrypt("wonderland", cost: 4), let carol = PasswordHash.make("secret", method: "$6$", cost: 0),
              // Slow on purpose (~0.3–1 s): shows that the check does not hold up the event loop.
              let bob = PasswordHash.bcrypt("builder", cost: 13) else { return nil }
        return (alice, bob, carol)
    }()
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "site/big.txt", Self.text)
        try writeFile(dir, "site/large.txt", Self.largeText)
        try writeFile(dir, "site/small.txt", "tiny")
        try writeFile(dir, "site/photo.png", deterministicBytes(count: 4096))
        let (alice, bob, carol) = try XCTUnwrap(Self.hashes, "the system's crypt library makes hashes")
        try writeFile(dir, ".htpasswd", "# users\ncarol:\(carol)\n")
        server = try TestServer(yaml: """
            server:
              threads: 1
              access_log: {to: "{{dir}}/access.log", format: json}
              trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]
              middleware: [{headers: {set: {X-Layer: server}}}]
            middleware:
              secure: [{headers: {set: {X-Frame-Options: DENY}, remove: [Server]}}, request_id]
            hosts:
              - names: [localhost]
                default: true
                middleware: [secure, {headers: {set: {X-Layer: host}, request: {set: {X-From: host}}}}]
                routes:
                  - path: /echo
                    middleware: [{headers: {set: {X-Layer: route}, add: {X-Extra: one}, request: {set: {X-From: route}}}}]
                    respond: {body: "from={{headers.x-from}} id={{request_id}} ip={{client_ip}} host={{host}}"}
                  - {path: /later, respond: {body: later, delay: 30ms}}
                  - {path: /ws, websocket: {echo: true}}
              - names: [cors.test]
                middleware: [{cors: {origins: ["https://a.example"], methods: [GET, PUT], headers: [Content-Type, X-Token], expose: [X-Total], credentials: true, max_age: 10m}}]
                routes:
                  - path: /items
                    methods: [GET]
                    respond: {json: {ok: true}, headers: {X-Total: "3"}}
              - names: [open.test]
                routes:
                  - path: /
                    methods: [GET]
                    middleware: [{cors: {origins: ["*"]}}]
                    respond: {body: open}
              - names: [auth.test]
                routes:
                  - path: /admin/
                    middleware: [{basic_auth: {realm: "Admin area", users: {alice: "\(alice)"}, htpasswd: .htpasswd}}, request_id]
                    respond: {body: "welcome {{request_id}}"}
                  - path: /slow
                    middleware: [{basic_auth: {users: {bob: "\(bob)"}}}]
                    respond: {body: slow}
                  - path: /open
                    respond: {body: open}
              - names: [ip.test]
                routes:
                  - {path: /internal, middleware: [{ip_filter: {allow: [10.0.0.0/8]}}], respond: {body: internal}}
                  - {path: /not-me, middleware: [{ip_filter: {allow: [127.0.0.0/8], deny: [127.0.0.1/32]}}], respond: {body: x}}
                  - {path: /only-me, middleware: [{ip_filter: {allow: [127.0.0.1/32], deny: [127.0.0.0/8]}}], respond: {body: me}}
                  - {path: /blocklist, middleware: [{ip_filter: {deny: [192.0.2.0/24]}}], respond: {body: ok}}
              - names: [limit.test]
                routes:
                  - {path: /ip, middleware: [{rate_limit: {rate: 1/m, burst: 2}}], respond: {body: ok}}
                  - {path: /key, middleware: [{rate_limit: {rate: 1/m, burst: 1, key: "header:X-Api-Key"}}], respond: {body: ok}}
                  - {path: /upload, middleware: [{body_limit: 100}], respond: {status: 201}}
              - names: [gzip.test]
                middleware: [{compress: {algorithms: [gzip, deflate], min_size: 1KiB}}]
                routes:
                  - {path: /, static: site}
                  - {path: /api, respond: {json: {text: "\(String(repeating: "abc", count: 600))"}}}
              - names: [rewrite.test]
                middleware: [{rewrite: {from: "^/old/(.*)$", to: "/new/$1?via=old"}}, {rewrite: {from: "^/new/(.*)$", to: "/new/again/$1"}}]
                routes:
                  - {path: "/new/{rest...}", respond: {body: "{{path.rest}} via={{query.via}} q={{query.q}}"}}
                  - {path: /escape, middleware: [{rewrite: {from: "^/escape$", to: "/../../etc/passwd"}}], respond: {body: no}}
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func request(_ path: String, host: String = "localhost", headers: [(String, String)] = []) throws -> RawResponse {
        try request("GET", path, host: host, headers: headers)
    }

    private func request(_ method: String, _ path: String, host: String = "localhost", headers: [(String, String)] = [],
                         body: String? = nil) throws -> RawResponse {
        let client = try RawClient(port: server.port)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        client.send(text + "\r\n" + (body ?? ""))
        return try XCTUnwrap(client.readResponse(head: method == "HEAD"), "\(method) \(host)\(path)")
    }

    // MARK: - Order and reach

    func testServerHostRouteOrderOnTheWayInAndBackOut() throws {
        let response = try request("/echo")
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.text.hasPrefix("from=route "), "the route's request edit comes last: \(response.text)")
        XCTAssertEqual(response.header("X-Layer"), "server", "responses pass back through route, host, then server")
        XCTAssertEqual(response.header("X-Extra"), "one")
        XCTAssertEqual(response.header("X-Frame-Options"), "DENY")
        XCTAssertNil(response.header("Server"), "remove: [Server] drops the engine's own field")
    }

    func testHostAndServerMiddlewareWrapRoutingAnswers() throws {
        let missing = try request("/nothing-here")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.header("X-Layer"), "server")
        XCTAssertEqual(missing.header("X-Frame-Options"), "DENY")
        XCTAssertNotNil(missing.header("X-Request-ID"))
        XCTAssertTrue(missing.text.contains("404"), "error bodies are still filled in")
        let wrongMethod = try request("POST", "/items", host: "cors.test", headers: [("Origin", "https://a.example")])
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertEqual(wrongMethod.header("Access-Control-Allow-Origin"), "https://a.example")
    }

    func testAnswersGivenLaterAndProtocolSwitchesPassBackThroughMiddleware() throws {
        let delayed = try request("/later")
        XCTAssertEqual(delayed.text, "later")
        XCTAssertEqual(delayed.header("X-Layer"), "server", "a delayed answer is edited when it comes")
        XCTAssertEqual(delayed.header("X-Frame-Options"), "DENY")
        XCTAssertNotNil(delayed.header("X-Request-ID"))

        let socket = try WebSocketClient(port: server.port, path: "/ws")
        XCTAssertEqual(socket.status, 101)
        XCTAssertEqual(socket.header("X-Layer"), "server", "so is the head of a protocol switch")
        XCTAssertNotNil(socket.header("X-Request-ID"))
        socket.send(text: "still a websocket")
        XCTAssertEqual(socket.readMessageFrame()?.text, "still a websocket")
    }

    // MARK: - request_id

    func testRequestIDIsMadeKeptOrReplacedAndLogged() throws {
        let made = try request("/echo")
        let id = try XCTUnwrap(made.header("X-Request-ID"))
        XCTAssertEqual(id.count, 32)
        XCTAssertTrue(id.allSatisfy(\.isHexDigit))
        XCTAssertTrue(made.text.contains("id=\(id) "), made.text)

        let kept = try request("/echo", headers: [("X-Request-ID", "trace-42.a:b")])
        XCTAssertEqual(kept.header("X-Request-ID"), "trace-42.a:b")
        for hostile in ["has space", String(repeating: "a", count: 129), "quote\"", "<script>"] {
            let replaced = try request("/echo", headers: [("X-Request-ID", hostile)])
            XCTAssertNotEqual(replaced.header("X-Request-ID"), hostile)
            XCTAssertEqual(replaced.header("X-Request-ID")?.count, 32)
        }
        let log = try waitForLogLine(containing: "trace-42.a:b")
        XCTAssertTrue(log.contains("\"request_id\":\"trace-42.a:b\""), log)
    }

    private func waitForLogLine(containing text: String) throws -> String {
        let path = dir.appendingPathComponent("access.log").path
        for _ in 0..<50 {
            if let lines = try? String(contentsOfFile: path, encoding: .utf8), let line = lines.split(separator: "\n").first(where: { $0.contains(text) }) {
                return String(line)
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        struct NoLogLine: Error, CustomStringConvertible { let description: String }
        throw NoLogLine(description: "no access log line contains \(text)")
    }

    // MARK: - trusted_proxies

    func testForwardedForIsBelievedOnlyFromTrustedProxiesRightmostUntrustedFirst() throws {
        XCTAssertTrue(try request("/echo").text.contains("ip=127.0.0.1 "))
        XCTAssertTrue(try request("/echo", headers: [("X-Forwarded-For", "198.51.100.7")]).text.contains("ip=198.51.100.7 "))
        // The client may prepend anything; the first hop (from the right) that is not a trusted proxy is the client.
        let chain = try request("/echo", headers: [("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1")])
        XCTAssertTrue(chain.text.contains("ip=198.51.100.7 "), chain.text)
        let forwarded = try request("/echo", headers: [("Forwarded", "for=203.0.113.9;proto=https;host=public.example, for=10.0.0.2")])
        XCTAssertTrue(forwarded.text.contains("ip=203.0.113.9 host=public.example"), forwarded.text)
        // Scheme and host of the proxy that met the client reach the access log.
        _ = try request("/echo", headers: [("X-Forwarded-For", "192.0.2.77"), ("X-Forwarded-Proto", "https"),
                                          ("X-Forwarded-Host", "www.example.net"), ("X-Request-ID", "proxied-1")])
        let logged = try waitForLogLine(containing: "proxied-1")
        for field in ["\"client\":\"192.0.2.77\"", "\"scheme\":\"https\"", "\"host\":\"www.example.net\""] {
            XCTAssertTrue(logged.contains(field), "\(field) in \(logged)")
        }
        let garbage = try request("/echo", headers: [("X-Forwarded-For", "not-an-ip")])
        XCTAssertTrue(garbage.text.contains("ip=127.0.0.1 "), garbage.text)
        // ip_filter decides on the address after trusted_proxies.
        XCTAssertEqual(try request("/internal", host: "ip.test").status, 403)
        XCTAssertEqual(try request("/internal", host: "ip.test", headers: [("X-Forwarded-For", "10.9.8.7")]).status, 200)
    }

    func testSpoofedForwardedForFromAnUntrustedPeerIsIgnored() throws {
        let other = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: other) }
        let untrusting = try TestServer(yaml: """
            server:
              access_log: {to: off}
              trusted_proxies: [10.0.0.0/8]
            hosts:
              - names: [localhost]
                routes:
                  - {path: /, middleware: [{ip_filter: {allow: [10.0.0.0/8]}}], respond: {body: "{{client_ip}}"}}
                  - {path: /ip, respond: {body: "{{client_ip}}"}}
            """, directory: other)
        defer { untrusting.stop() }
        let spoofed = RawClient.get(port: untrusting.port, "/", headers: ["X-Forwarded-For": "10.0.0.1", "Forwarded": "for=10.0.0.1"])
        XCTAssertEqual(spoofed?.status, 403)
        XCTAssertEqual(RawClient.get(port: untrusting.port, "/ip", headers: ["X-Forwarded-For": "10.0.0.1"])?.text, "127.0.0.1")
    }

    // MARK: - cors

    func testPreflightIsAnsweredEvenWhereMethodsAreLimited() throws {
        let preflight = try request("OPTIONS", "/items", host: "cors.test", headers: [
            ("Origin", "https://a.example"), ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type, x-token"),
        ])
        XCTAssertEqual(preflight.status, 204)
        XCTAssertEqual(preflight.header("Access-Control-Allow-Origin"), "https://a.example", "never * with credentials")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Methods"), "GET, PUT")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Headers"), "Content-Type, X-Token")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Credentials"), "true")
        XCTAssertEqual(preflight.header("Access-Control-Max-Age"), "600")
        XCTAssertTrue(preflight.header("Vary")?.contains("Origin") ?? false)

        // A route-level cors on a GET-only route answers the preflight too.
        let routeLevel = try request("OPTIONS", "/", host: "open.test", headers: [
            ("Origin", "https://anyone.example"), ("Access-Control-Request-Method", "GET"),
        ])
        XCTAssertEqual(routeLevel.status, 204)
        XCTAssertEqual(routeLevel.header("Access-Control-Allow-Origin"), "*")
    }

    func testActualRequestsAndDisallowedOrigins() throws {
        let allowed = try request("/items", host: "cors.test", headers: [("Origin", "https://a.example")])
        XCTAssertEqual(allowed.status, 200)
        XCTAssertEqual(allowed.header("Access-Control-Allow-Origin"), "https://a.example")
        XCTAssertEqual(allowed.header("Access-Control-Allow-Credentials"), "true")
        XCTAssertEqual(allowed.header("Access-Control-Expose-Headers"), "X-Total")
        XCTAssertEqual(allowed.header("Vary"), "Origin")

        let stranger = try request("/items", host: "cors.test", headers: [("Origin", "https://evil.example")])
        XCTAssertEqual(stranger.status, 200)
        XCTAssertTrue(stranger.headers.allSatisfy { !$0.0.lowercased().hasPrefix("access-control-") }, "\(stranger.headers)")
        XCTAssertEqual(stranger.header("Vary"), "Origin")

        let badPreflight = try request("OPTIONS", "/items", host: "cors.test", headers: [
            ("Origin", "https://evil.example"), ("Access-Control-Request-Method", "PUT"),
        ])
        XCTAssertTrue(badPreflight.headers.allSatisfy { !$0.0.lowercased().hasPrefix("access-control-") })
        let unlistedMethod = try request("OPTIONS", "/items", host: "cors.test", headers: [
            ("Origin", "https://a.example"), ("Access-Control-Request-Method", "DELETE"),
        ])
        XCTAssertNil(unlistedMethod.header("Access-Control-Allow-Origin"))
        let unlistedHeader = try request("OPTIONS", "/items", host: "cors.test", headers: [
            ("Origin", "https://a.example"), ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "X-Secret"),
        ])
        XCTAssertNil(unlistedHeader.header("Access-Control-Allow-Origin"))
    }

    // MARK: - basic_auth

    private func basic(_ credentials: String) -> (String, String) {
        ("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString())
    }

    func testBasicAuthChallengesRefusesAndAdmits() throws {
        let anonymous = try request("/admin/", host: "auth.test")
        XCTAssertEqual(anonymous.status, 401)
        XCTAssertEqual(anonymous.header("WWW-Authenticate"), "Basic realm=\"Admin area\", charset=\"UTF-8\"")
        XCTAssertNil(anonymous.header("X-Request-ID"), "nothing behind basic_auth ran")
        for wrong in ["alice:Wonderland", "alice:", "mallory:wonderland", ":wonderland", "alice"] {
            XCTAssertEqual(try request("/admin/", host: "auth.test", headers: [basic(wrong)]).status, 401, wrong)
        }
        for malformed in ["Basic", "Basic !!!", "Bearer abc", "Basic " + String(repeating: "A", count: 5000)] {
            XCTAssertEqual(try request("/admin/", host: "auth.test", headers: [("Authorization", malformed)]).status, 401, malformed)
        }
        for _ in 0..<2 {
            let admitted = try request("/admin/", host: "auth.test", headers: [basic("alice:wonderland")])
            XCTAssertEqual(admitted.status, 200)
            XCTAssertTrue(admitted.text.hasPrefix("welcome "), admitted.text)
            XCTAssertEqual(admitted.text, "welcome " + (admitted.header("X-Request-ID") ?? "-"), "the chain went on after the check")
        }
        let carol = try request("/admin/", host: "auth.test", headers: [basic("carol:secret")])
        XCTAssertEqual(carol.status, 200, "sha512-crypt from htpasswd")
        let logged = try waitForLogLine(containing: try XCTUnwrap(carol.header("X-Request-ID")))
        XCTAssertTrue(logged.contains("\"user\":\"carol\""), logged)
        XCTAssertEqual(try request("/admin/", host: "auth.test", headers: [basic("carol:wonderland")]).status, 401)
        XCTAssertEqual(try request("/open", host: "auth.test").status, 200, "other routes are not protected")
    }

    /// A slow hash check (bcrypt cost 13) runs off the event loop: with one event-loop thread,
    /// another client is answered while the check is still going on.
    func testSlowHashCheckDoesNotStallOtherConnections() throws {
        let checking = try RawClient(port: server.port, timeout: 30)
        let (_, credentials) = basic("bob:not-the-password")
        checking.send("GET /slow HTTP/1.1\r\nHost: auth.test\r\nAuthorization: \(credentials)\r\nConnection: close\r\n\r\n")
        let other = try request("/open", host: "auth.test")
        XCTAssertEqual(other.text, "open")
        XCTAssertFalse(checking.hasDataWaiting(), "the check's answer had not arrived when the other client was served")
        XCTAssertEqual(checking.readResponse()?.status, 401)
    }

    // MARK: - ip_filter

    func testMostSpecificNetworkWins() throws {
        XCTAssertEqual(try request("/not-me", host: "ip.test").status, 403)
        XCTAssertEqual(try request("/only-me", host: "ip.test").status, 200)
        XCTAssertEqual(try request("/blocklist", host: "ip.test").status, 200, "only deny: everyone else passes")
        XCTAssertEqual(try request("/blocklist", host: "ip.test", headers: [("X-Forwarded-For", "192.0.2.44")]).status, 403)
        XCTAssertEqual(try request("/not-me", host: "ip.test", headers: [("X-Forwarded-For", "127.0.0.2")]).status, 200)
    }

    // MARK: - rate_limit

    func testTokenBucketPerClientAndPerHeader() throws {
        XCTAssertEqual(try request("/ip", host: "limit.test").status, 200)
        XCTAssertEqual(try request("/ip", host: "limit.test").status, 200)
        let limited = try request("/ip", host: "limit.test")
        XCTAssertEqual(limited.status, 429)
        let retry = try XCTUnwrap(limited.header("Retry-After").flatMap(Int.init))
        XCTAssertTrue((1...60).contains(retry), "a token comes back within a minute: \(retry)")
        XCTAssertEqual(try request("/ip", host: "limit.test", headers: [("X-Forwarded-For", "198.51.100.1")]).status, 200,
                       "another client has its own bucket")

        XCTAssertEqual(try request("/key", host: "limit.test", headers: [("X-Api-Key", "a")]).status, 200)
        XCTAssertEqual(try request("/key", host: "limit.test", headers: [("X-Api-Key", "a")]).status, 429)
        XCTAssertEqual(try request("/key", host: "limit.test", headers: [("X-Api-Key", "b")]).status, 200)
    }

    // MARK: - body_limit

    func testBodyLimitBeforeAndWhileReading() throws {
        XCTAssertEqual(try request("POST", "/upload", host: "limit.test", body: String(repeating: "x", count: 100)).status, 201)
        // Refused from the head alone: the body is never sent.
        let early = try RawClient(port: server.port)
        early.send("POST /upload HTTP/1.1\r\nHost: limit.test\r\nContent-Length: 1000000\r\n\r\n")
        let refused = try XCTUnwrap(early.readResponse())
        XCTAssertEqual(refused.status, 413)
        XCTAssertEqual(refused.header("Connection"), "close")
        // Chunked: refused once the body passes the limit.
        let chunked = try RawClient(port: server.port)
        chunked.send("POST /upload HTTP/1.1\r\nHost: limit.test\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n\(String(repeating: "y", count: 100))\r\n1\r\nz\r\n")
        XCTAssertEqual(chunked.readResponse()?.status, 413)
    }

    // MARK: - compress

    private func gunzip(_ bytes: [UInt8], _ algorithm: ZlibAlgorithm) throws -> String {
        let decompressor = try ZlibDecompressor(algorithm: algorithm)
        var input = ByteBuffer(bytes: bytes)
        var output = ByteBuffer()
        output.reserveCapacity(4 << 20)
        try decompressor.inflate(from: &input, to: &output)
        return String(buffer: output)
    }

    func testFilesAndBodiesAreCompressedByPreference() throws {
        let small = try request("/big.txt", host: "gzip.test", headers: [("Accept-Encoding", "deflate;q=0.5, gzip")])
        XCTAssertEqual(small.header("Content-Encoding"), "gzip")
        XCTAssertEqual(small.header("Vary"), "Accept-Encoding")
        XCTAssertTrue(small.header("ETag")?.hasPrefix("W/\"") ?? false, "the strong tag became weak")
        XCTAssertEqual(small.header("Content-Length"), String(small.body.count))
        XCTAssertLessThan(small.body.count, Self.text.utf8.count / 10)
        XCTAssertEqual(try gunzip(small.body, .gzip), Self.text)

        // A file sent from disk is read and compressed in chunks, as a chunked body.
        let client = try RawClient(port: server.port, timeout: 10)
        client.send("GET /large.txt HTTP/1.1\r\nHost: gzip.test\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        let (head, body) = try XCTUnwrap(decodeChunkedResponse(client.readToEnd()))
        XCTAssertTrue(head.contains("Content-Encoding: gzip"), head)
        XCTAssertTrue(head.contains("Transfer-Encoding: chunked"), head)
        XCTAssertFalse(head.contains("Content-Length"), head)
        XCTAssertLessThan(body.count, Self.largeText.utf8.count / 4)
        XCTAssertEqual(try gunzip(body, .gzip), Self.largeText)

        let deflated = try request("/api", host: "gzip.test", headers: [("Accept-Encoding", "gzip;q=0.1, deflate")])
        XCTAssertEqual(deflated.header("Content-Encoding"), "deflate")
        XCTAssertEqual(try gunzip(deflated.body, .zlib), "{\"text\":\"\(String(repeating: "abc", count: 600))\"}")
    }

    func testWhatIsNeverCompressed() throws {
        let gzip = ("Accept-Encoding", "gzip")
        let identity = try request("/big.txt", host: "gzip.test")
        XCTAssertNil(identity.header("Content-Encoding"))
        XCTAssertEqual(identity.header("Vary"), "Accept-Encoding", "caches must still know the answer varies")
        XCTAssertFalse(identity.header("ETag")?.hasPrefix("W/") ?? true)
        let refused = try request("/big.txt", host: "gzip.test", headers: [("Accept-Encoding", "gzip;q=0")])
        XCTAssertNil(refused.header("Content-Encoding"))
        let range = try request("/big.txt", host: "gzip.test", headers: [gzip, ("Range", "bytes=0-99")])
        XCTAssertEqual(range.status, 206)
        XCTAssertNil(range.header("Content-Encoding"))
        XCTAssertEqual(range.body.count, 100)
        let head = try request("HEAD", "/big.txt", host: "gzip.test", headers: [gzip])
        XCTAssertNil(head.header("Content-Encoding"))
        XCTAssertEqual(try request("/small.txt", host: "gzip.test", headers: [gzip]).header("Content-Encoding"), nil, "under min_size")
        XCTAssertNil(try request("/photo.png", host: "gzip.test", headers: [gzip]).header("Content-Encoding"), "type not listed")
        let etag = try XCTUnwrap(identity.header("ETag"))
        let revalidated = try request("/big.txt", host: "gzip.test", headers: [gzip, ("If-None-Match", "W/" + etag)])
        XCTAssertEqual(revalidated.status, 304)
        XCTAssertNil(revalidated.header("Content-Encoding"))
    }

    // MARK: - rewrite

    func testRewriteRunsBeforeRoutingOnceWithCaptures() throws {
        let rewritten = try request("/old/a/b?q=1", host: "rewrite.test")
        XCTAssertEqual(rewritten.status, 200)
        // Each rule applies once, in order: the second rewrites the first one's result, and its own
        // result (which it would match again) is not rewritten again.
        XCTAssertEqual(rewritten.text, "again/a/b via=old q=1")
        XCTAssertEqual(try request("/new/x", host: "rewrite.test").text, "again/x via= q=")
        XCTAssertEqual(try request("/escape", host: "rewrite.test").status, 400, "a rewrite cannot climb out of /")
    }
}
