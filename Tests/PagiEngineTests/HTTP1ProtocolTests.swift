import Foundation
import PagiTestSupport
import XCTest

/// HTTP/1.1 behaviour over real sockets: keep-alive, pipelining, framing rules (RFC 9112),
/// limits and timeouts.
final class HTTP1ProtocolTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "site/index.html", "<h1>home</h1>")
        try writeFile(dir, "site/a.txt", "alpha")
        try writeFile(dir, "site/big.bin", Self.big)
        try writeFile(dir, "other/index.html", "other host")
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
              timeouts: {header: 1s, body: 1s, idle: 1s}
              limits: {header_bytes: 4KiB, uri_bytes: 1KiB, headers: 20, body_bytes: 1KiB}
            hosts:
              - names: [localhost]
                default: true
                routes:
                  - path: /
                    static: site
              - names: [other.test]
                routes:
                  - path: /
                    static: other
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    func testKeepAliveServesSeveralRequestsOnOneConnection() throws {
        let client = try RawClient(port: server.port)
        for _ in 0..<3 {
            client.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let response = try XCTUnwrap(client.readResponse())
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.text, "alpha")
            XCTAssertNil(response.header("Connection"))
            XCTAssertEqual(response.header("Server"), "pagi-serve")
            XCTAssertNotNil(response.header("Date"))
        }
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\nHEAD /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\nGET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "alpha")
        XCTAssertEqual(client.readResponse()?.text, "<h1>home</h1>")
        let head = try XCTUnwrap(client.readResponse(head: true))
        XCTAssertEqual(head.header("Content-Length"), "5")
        XCTAssertEqual(client.readResponse()?.status, 404)
    }

    private static let big = deterministicBytes(count: 1024 * 1024 + 5)

    /// A file over 256 KiB leaves a slice per turn of the loop (docs/performance.md, *1 MiB file*):
    /// the answers pipelined behind it wait for its last byte — and so do those behind a range of it.
    func testAnswersPipelinedBehindALargeFileWaitForItsLastByte() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    + "GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=10-600000,700000-\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let whole = try XCTUnwrap(client.readResponse())
        XCTAssertTrue(whole.body == Self.big, "\(whole.body.count) bytes")
        XCTAssertEqual(client.readResponse()?.text, "alpha")
        let parts = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(parts.status, 206)
        let text = String(decoding: parts.body, as: UTF8.self)
        XCTAssertTrue(text.contains("Content-Range: bytes 700000-\(Self.big.count - 1)/\(Self.big.count)"))
        XCTAssertTrue(parts.body.count > 600_000 + Self.big.count - 700_000, "\(parts.body.count) bytes")
        XCTAssertEqual(client.readResponse()?.text, "alpha")
    }

    func testConnectionCloseIsHonoured() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertTrue(client.waitForClose())
    }

    func testHTTP10ClosesUnlessKeepAliveIsAsked() throws {
        let plain = try RawClient(port: server.port)
        plain.send("GET /a.txt HTTP/1.0\r\n\r\n")
        XCTAssertEqual(plain.readResponse()?.status, 200)
        XCTAssertTrue(plain.waitForClose())

        let kept = try RawClient(port: server.port)
        kept.send("GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(kept.readResponse()?.header("Connection"), "keep-alive")
        kept.send("GET /a.txt HTTP/1.0\r\n\r\n")
        XCTAssertEqual(kept.readResponse()?.text, "alpha")
    }

    func testAbsoluteFormTargetSelectsTheHost() throws {
        let client = try RawClient(port: server.port)
        client.send("GET http://other.test/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "other host")
        client.send("GET / HTTP/1.1\r\nHost: OTHER.test:8080\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "other host")
    }

    func testOptionsAsteriskListsMethods() throws {
        let client = try RawClient(port: server.port)
        client.send("OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.header("Allow")?.contains("GET") ?? false)
    }

    func testOptionsOnAPathAnswersWithAllow() throws {
        let response = try XCTUnwrap(RawClient.get(port: server.port, "/a.txt", method: "OPTIONS"))
        XCTAssertEqual(response.status, 204)
        XCTAssertEqual(response.header("Allow"), "GET, HEAD, OPTIONS")
    }

    func testExpectContinueGetsInterimResponse() throws {
        let client = try RawClient(port: server.port)
        client.send("POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 100)
        client.send("hello")
        let final = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(final.status, 405)
        XCTAssertEqual(final.header("Allow"), "GET, HEAD, OPTIONS")
    }

    func testExpectContinueWithTooLargeBodyGets413Instead() throws {
        let client = try RawClient(port: server.port)
        client.send("POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 413)
        XCTAssertTrue(client.waitForClose())
    }

    func testChunkedRequestBodyIsDecoded() throws {
        let client = try RawClient(port: server.port)
        client.send("POST /a.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 405)
        XCTAssertEqual(client.readResponse()?.text, "alpha", "the request after a chunked body is read correctly")
    }

    /// Each malformed request gets its status, then the connection closes: the valid request sent
    /// right behind it on the same connection must never be answered (no request smuggling).
    func testMalformedRequestsAreRejectedAndNothingAfterThemIsRead() throws {
        let longURI = "/" + String(repeating: "a", count: 2000)
        let manyHeaders = (0..<30).map { "X-H\($0): v\r\n" }.joined()
        let bigHeader = "X-Big: " + String(repeating: "b", count: 5000) + "\r\n"
        let cases: [(String, String, Int)] = [
            ("CL and TE", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("conflicting CL", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
            ("CL list conflict", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4, 5\r\n\r\nabcde", 400),
            ("invalid CL", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4x\r\n\r\nabcd", 400),
            ("negative CL", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", 400),
            ("TE not chunked", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            ("TE chunked not final", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
            ("TE unknown coding", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("TE chunked twice", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("bad chunk size", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
            ("chunk without CRLF", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhelloX\r\n0\r\n\r\n", 400),
            ("bare LF after chunk size", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
            ("bare LF after chunk data", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
            ("bare LF in last chunk", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n", 400),
            ("bare LF after trailer", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n", 400),
            ("missing Host", "GET / HTTP/1.1\r\n\r\n", 400),
            ("two Hosts", "GET / HTTP/1.1\r\nHost: localhost\r\nHost: other.test\r\n\r\n", 400),
            ("bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            ("fragment in Host", "GET / HTTP/1.1\r\nHost: local#host\r\n\r\n", 400),
            ("userinfo Host", "GET / HTTP/1.1\r\nHost: user@localhost\r\n\r\n", 400),
            ("space before colon", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A : b\r\n\r\n", 400),
            ("obs-fold", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n  c\r\n\r\n", 400),
            ("NUL in value", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: b\u{0}c\r\n\r\n", 400),
            ("bare CR in value", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: b\rc\r\n\r\n", 400),
            ("header without colon", "GET / HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n", 400),
            ("bad version", "GET / HTTP/1.x\r\nHost: localhost\r\n\r\n", 400),
            ("lower-case version", "GET / http/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
            ("HTTP/3.1 version", "GET / HTTP/3.1\r\nHost: localhost\r\n\r\n", 505),
            ("two spaces in request line", "GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("unknown method", "BREW / HTTP/1.1\r\nHost: localhost\r\n\r\n", 501),
            ("CONNECT", "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost\r\n\r\n", 501),
            ("URI too long", "GET \(longURI) HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
            ("too many headers", "GET / HTTP/1.1\r\nHost: localhost\r\n\(manyHeaders)\r\n", 431),
            ("header section too large", "GET / HTTP/1.1\r\nHost: localhost\r\n\(bigHeader)\r\n", 431),
            ("body too large", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n\r\n", 413),
            ("chunked body too large", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", 413),
            ("traversal", "GET /../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("encoded traversal", "GET /%2e%2e/%2E%2E/etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("encoded NUL", "GET /a.txt%00.html HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("bad escape", "GET /%zz HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("invalid UTF-8 in path", "GET /%ff%fe HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("asterisk with GET", "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("bad scheme", "GET ftp://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
        ]
        for (name, request, status) in cases {
            let client = try RawClient(port: server.port)
            client.send(request + "GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let response = client.readResponse()
            XCTAssertEqual(response?.status, status, name)
            XCTAssertEqual(response?.header("Connection"), "close", name)
            XCTAssertFalse(response?.text.contains("alpha") ?? false, name)
            let rest = client.readToEnd()
            XCTAssertTrue(rest.isEmpty, "\(name): nothing may follow the error response, got \(String(decoding: rest, as: UTF8.self))")
            XCTAssertTrue(client.closedByPeer, "\(name): connection must be closed")
        }
    }

    /// An encoded `/` or `\` is no protocol error (a `{param}` may carry one, docs/configuration.md
    /// §8.2), but `static` refuses it, and the connection goes on.
    func testEncodedSlashAndBackslashAreRefusedByStaticOnly() throws {
        for path in ["/a%2f..%2f..%2fetc", "/..%5c..%5cetc", "/a%2Fb.txt"] {
            let client = try RawClient(port: server.port)
            client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(client.readResponse()?.status, 400, path)
            XCTAssertEqual(client.readResponse()?.text.contains("alpha"), true, path)
        }
    }

    /// RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as the highest we implement.
    func testHigherMinorVersionIsServedAsHTTP11() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /a.txt HTTP/1.2\r\nHost: localhost\r\n\r\nGET /a.txt HTTP/1.9\r\nHost: localhost\r\n\r\n")
        for _ in 0..<2 {
            let response = try XCTUnwrap(client.readResponse())
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.text, "alpha")
            XCTAssertNil(response.header("Connection"), "kept alive as HTTP/1.1")
        }
    }

    func testErrorBodiesAreHTMLOrJSONAndNeverLeakPaths() throws {
        let html = try XCTUnwrap(RawClient.get(port: server.port, "/nope"))
        XCTAssertEqual(html.status, 404)
        XCTAssertEqual(html.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertTrue(html.text.contains("404 Not Found"))
        XCTAssertFalse(html.text.contains(dir.path))

        let json = try XCTUnwrap(RawClient.get(port: server.port, "/nope", headers: ["Accept": "application/json"]))
        XCTAssertEqual(json.header("Content-Type"), "application/json")
        let object = try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any]
        XCTAssertEqual(object?["status"] as? Int, 404)
    }

    func testPartialHeadTimesOutWith408() throws {
        let client = try RawClient(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: local")
        let start = Date()
        XCTAssertEqual(client.readResponse()?.status, 408)
        XCTAssertTrue(client.waitForClose())
        XCTAssertLessThan(Date().timeIntervalSince(start), 4.5)
    }

    func testSlowlorisTrickleStillTimesOut() throws {
        let client = try RawClient(port: server.port)
        client.send("GET / HTTP/1.1\r\n")
        // Trickling a byte now and then must not extend the head deadline.
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 0.4)
            client.send("X")
        }
        XCTAssertEqual(client.readResponse()?.status, 408)
    }

    func testIdleKeepAliveConnectionIsClosedQuietly() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
        XCTAssertTrue(client.readToEnd().isEmpty, "no 408 is sent to an idle connection")
        XCTAssertTrue(client.closedByPeer)
    }

    func testStalledBodyTimesOutWith408() throws {
        let client = try RawClient(port: server.port)
        client.send("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nab")
        XCTAssertEqual(client.readResponse()?.status, 408)
        XCTAssertTrue(client.waitForClose())
    }

    func testOtherClientsAreServedWhileOneMisbehaves() throws {
        let stalled = try RawClient(port: server.port)
        stalled.send("GET / HTTP/1.1\r\nHost: loc")
        let bad = try RawClient(port: server.port)
        bad.send("GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        XCTAssertEqual(bad.readResponse()?.status, 400)
        XCTAssertEqual(RawClient.get(port: server.port, "/a.txt")?.text, "alpha")
    }
}
