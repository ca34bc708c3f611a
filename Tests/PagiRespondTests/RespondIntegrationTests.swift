import Foundation
import PagiTestSupport
import XCTest

/// `respond` (docs/configuration.md §9.2) end to end: fixed and templated bodies, the template context,
/// hostile request values, stub files, delays, faults, throttling and sequences.
final class RespondIntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "stubs/users.json", #"[{"id": 1, "name": "{{not a template}}"}]"#)
        try writeFile(dir, "stubs/hello.html", "<p>Hello {{query.name}}</p>\n")
        try writeFile(dir, "stubs/note.txt", "note for {{path.id}}: {{query.q}}\n")
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [localhost]
                routes:
                  - path: /hello
                    respond: {body: "Hello, world!"}
                  - path: /fixed-json
                    respond: {json: {ok: true, count: 3, ratio: 0.5, tags: [a, b], none: null}}
                  - path: /created/{id}
                    respond:
                      status: 201
                      headers: {Location: "/users/{{path.id}}", Cache-Control: no-store}
                      json: {id: "{{path.id}}"}
                  - path: /context/{id}
                    respond:
                      json:
                        method: "{{method}}"
                        id: "{{path.id}}"
                        q: "{{query.q}}"
                        header: "{{headers.x-test}}"
                        body: "{{body}}"
                        name: "{{json.user.name}}"
                        second: "{{json.items.1}}"
                        items: "{{#json.items}}[{{.}}]{{/json.items}}"
                        host: "{{host}}"
                        uri: "{{uri}}"
                        client_ip: "{{client_ip}}"
                        now: "{{now}}"
                        uuid: "{{uuid}}"
                        same_uuid: "{{uuid}}"
                        request_id: "{{request_id}}"
                        missing: "{{nothing.here}}"
                  - path: /echo
                    respond:
                      json: {query: "{{query.q}}", header: "{{headers.x-evil}}", body: "{{body}}", field: "{{json.s}}",
                             triple: "{{{query.q}}}", list: ["{{query.q}}"], nested: {deep: "<{{query.q}}>"}}
                  - path: /text
                    respond: {body: "got {{query.q}}"}
                  - path: /html
                    respond: {body: "<p>{{query.q}}</p>", headers: {Content-Type: text/html; charset=utf-8}}
                  - path: /users
                    respond: {file: stubs/users.json}
                  - path: /page
                    respond: {file: stubs/hello.html, template: true}
                  - path: /notes/{id}
                    respond: {file: stubs/note.txt, template: true}
                  - path: /gone
                    respond: {status: 410}
                  - path: /slow
                    respond: {body: slow, delay: 300ms}
                  - path: /jitter
                    respond: {body: jitter, delay: {min: 150ms, max: 250ms}}
                  - path: /fast
                    respond: {body: fast}
                  - path: /reset
                    respond: {fault: reset}
                  - path: /empty
                    respond: {fault: empty}
                  - path: /malformed
                    respond: {fault: malformed}
                  - path: /late-reset
                    respond: {fault: reset, delay: 200ms}
                  - path: /dribble
                    respond: {body: "\(String(repeating: "0123456789", count: 300))", throttle: 1000/s}
                  - path: /once-then-last
                    respond:
                      - {body: first}
                      - {body: second, status: 202}
                      - {body: last}
                  - path: /round
                    cycle: true
                    respond:
                      - {body: ping}
                      - {body: pong}
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func get(_ path: String, _ headers: [String: String] = [:], method: String = "GET") throws -> RawResponse {
        try XCTUnwrap(RawClient.get(port: server.port, path, headers: headers, method: method))
    }

    /// Sends raw request bytes on a new connection and reads one response.
    private func exchange(_ bytes: [UInt8]) throws -> RawResponse {
        let client = try RawClient(port: server.port)
        client.send(bytes)
        return try XCTUnwrap(client.readResponse())
    }

    private func jsonObject(_ response: RawResponse, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(response.body))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(response.text)", file: file, line: line)
    }

    // MARK: - Bodies and defaults

    func testFixedBodyIsPlainTextAndHeadSendsOnlyItsLength() throws {
        let response = try get("/hello")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "Hello, world!")
        XCTAssertEqual(response.header("Content-Type"), "text/plain; charset=utf-8")
        XCTAssertEqual(response.header("Content-Length"), "13")

        let client = try TimedSocket(port: server.port, timeout: 2)
        client.send("HEAD /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let raw = String(decoding: client.readAll().arrivals.flatMap(\.bytes), as: UTF8.self)
        XCTAssertTrue(raw.contains("Content-Length: 13\r\n"), raw)
        XCTAssertTrue(raw.hasSuffix("\r\n\r\n"), "HEAD gets no body: \(raw)")
    }

    func testJSONValueIsSentAsJSON() throws {
        let response = try get("/fixed-json")
        XCTAssertEqual(response.header("Content-Type"), "application/json")
        let object = try jsonObject(response)
        XCTAssertEqual(object["ok"] as? Bool, true)
        XCTAssertEqual(object["count"] as? Int, 3)
        XCTAssertEqual(object["ratio"] as? Double, 0.5)
        XCTAssertEqual(object["tags"] as? [String], ["a", "b"])
        XCTAssertTrue(object["none"] is NSNull)
    }

    func testStatusAndTemplatedHeaders() throws {
        let response = try get("/created/42")
        XCTAssertEqual(response.status, 201)
        XCTAssertEqual(response.header("Location"), "/users/42")
        XCTAssertEqual(response.header("Cache-Control"), "no-store")
        XCTAssertEqual(try jsonObject(response)["id"] as? String, "42")
    }

    func testAnErrorStatusWithoutBodyGetsTheUsualErrorBody() throws {
        XCTAssertTrue(try get("/gone").text.contains("410 Gone"))
        let json = try get("/gone", ["Accept": "application/json"])
        XCTAssertEqual(try jsonObject(json)["status"] as? Int, 410)
    }

    // MARK: - Template context

    func testEveryContextKey() throws {
        let body = #"{"user": {"name": "Ada"}, "items": ["x", "y", "z"]}"#
        let started = Date()
        let response = try exchange(Array("""
            POST /context/7?q=hello%20there HTTP/1.1\r
            Host: LocalHost:8080\r
            X-Test: header value\r
            X-Request-ID: req-123\r
            Content-Type: application/json\r
            Content-Length: \(body.utf8.count)\r
            Connection: close\r
            \r
            \(body)
            """.utf8))
        XCTAssertEqual(response.status, 200)
        let object = try jsonObject(response)
        XCTAssertEqual(object["method"] as? String, "POST")
        XCTAssertEqual(object["id"] as? String, "7")
        XCTAssertEqual(object["q"] as? String, "hello there")
        XCTAssertEqual(object["header"] as? String, "header value")
        XCTAssertEqual(object["body"] as? String, body)
        XCTAssertEqual(object["name"] as? String, "Ada")
        XCTAssertEqual(object["second"] as? String, "y")
        XCTAssertEqual(object["items"] as? String, "[x][y][z]")
        XCTAssertEqual(object["host"] as? String, "localhost")
        XCTAssertEqual(object["uri"] as? String, "/context/7?q=hello%20there")
        XCTAssertEqual(object["client_ip"] as? String, "127.0.0.1")
        XCTAssertEqual(object["request_id"] as? String, "req-123")
        XCTAssertEqual(object["missing"] as? String, "")
        let now = try XCTUnwrap(ISO8601DateFormatter().date(from: try XCTUnwrap(object["now"] as? String)), "now is RFC 3339")
        XCTAssertLessThan(abs(now.timeIntervalSince(started)), 60)
        let uuid = try XCTUnwrap(object["uuid"] as? String)
        XCTAssertNotNil(UUID(uuidString: uuid), uuid)
        XCTAssertEqual(object["same_uuid"] as? String, uuid, "one response sees one uuid")
        XCTAssertNotEqual(try jsonObject(get("/context/7"))["uuid"] as? String, uuid, "each response gets a new uuid")
    }

    func testRequestIdIsGeneratedWhenTheClientSentNone() throws {
        let requestID = try XCTUnwrap(try jsonObject(get("/context/1"))["request_id"] as? String)
        XCTAssertFalse(requestID.isEmpty)
    }

    // MARK: - Hostile input

    func testHostileRequestValuesCannotBreakTheJSON() throws {
        let hostile = "\"quoted\" back\\slash </script> line1\nline2 {{uuid}}"
        var query = ""
        for byte in hostile.utf8 { query += String(format: "%%%02X", byte) }
        query += "%FF%FE"  // invalid UTF-8
        let body = Array(#"{"s": "\"</script>\"\n\\"}"#.utf8)
        var request = Array("POST /echo?q=\(query) HTTP/1.1\r\nHost: localhost\r\nX-Evil: \"a\\b\" </script> ".utf8)
        request += [0xC3, 0x28, 0xFF]  // invalid UTF-8 in a header value (obs-text)
        request += Array("\r\nContent-Length: \(body.count + 2)\r\nConnection: close\r\n\r\n".utf8) + body + [0xFF, 0x0A]
        let response = try exchange(request)
        XCTAssertEqual(response.status, 200)
        let object = try jsonObject(response)
        let expectedQuery = hostile + "\u{FFFD}\u{FFFD}"
        XCTAssertEqual(object["query"] as? String, expectedQuery)
        XCTAssertEqual(object["triple"] as? String, expectedQuery)
        XCTAssertEqual(object["list"] as? [String], [expectedQuery])
        XCTAssertEqual((object["nested"] as? [String: Any])?["deep"] as? String, "<\(expectedQuery)>")
        XCTAssertEqual(object["header"] as? String, "\"a\\b\" </script> \u{FFFD}(\u{FFFD}")
        XCTAssertEqual(object["body"] as? String, #"{"s": "\"</script>\"\n\\"}"# + "\u{FFFD}\n")
        XCTAssertEqual(object["field"] as? String, "", "a body that is not valid JSON has no json context")

        let valid = try exchange(Array("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body)
        XCTAssertEqual(try jsonObject(valid)["field"] as? String, "\"</script>\"\n\\")
    }

    func testTextBodiesInsertValuesRawAndHTMLBodiesEscapeThem() throws {
        let raw = try get("/text?q=%3Cb%3E%26%22")
        XCTAssertEqual(raw.text, "got <b>&\"")
        let html = try get("/html?q=%3Cb%3E%26%22")
        XCTAssertEqual(html.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertEqual(html.text, "<p>&lt;b&gt;&amp;&quot;</p>")
    }

    // MARK: - Stub files

    func testFileIsSentVerbatimWithTheTypeOfItsExtension() throws {
        let response = try get("/users")
        XCTAssertEqual(response.header("Content-Type"), "application/json; charset=utf-8")
        XCTAssertEqual(response.text, #"[{"id": 1, "name": "{{not a template}}"}]"#, "only `template: true` files are templated")
    }

    func testTemplatedFilesEscapeOnlyForHTML() throws {
        let page = try get("/page?name=%3Ci%3EAda%3C/i%3E")
        XCTAssertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertEqual(page.text, "<p>Hello &lt;i&gt;Ada&lt;/i&gt;</p>\n")
        let note = try get("/notes/9?q=%3Craw%3E")
        XCTAssertEqual(note.header("Content-Type"), "text/plain; charset=utf-8")
        XCTAssertEqual(note.text, "note for 9: <raw>\n")
    }

    // MARK: - Delays

    func testFixedDelayIsWaited() throws {
        let clock = ContinuousClock()
        let started = clock.now
        XCTAssertEqual(try get("/slow").text, "slow")
        XCTAssertGreaterThanOrEqual(clock.now - started, .milliseconds(300))
    }

    func testRangedDelayIsAtLeastItsMinimum() throws {
        let clock = ContinuousClock()
        for _ in 0..<3 {
            let started = clock.now
            XCTAssertEqual(try get("/jitter").text, "jitter")
            XCTAssertGreaterThanOrEqual(clock.now - started, .milliseconds(150))
        }
    }

    func testPipelinedResponsesStayInOrderBehindADelay() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\nGET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "slow")
        XCTAssertEqual(client.readResponse()?.text, "fast")
    }

    // MARK: - Faults

    func testResetFaultResetsTheConnection() throws {
        let client = try TimedSocket(port: server.port)
        client.send("GET /reset HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let (arrivals, end) = client.readAll()
        XCTAssertTrue(arrivals.isEmpty)
        XCTAssertEqual(end, .error(ECONNRESET))
    }

    func testDelayedResetWaitsThenResets() throws {
        let clock = ContinuousClock()
        let started = clock.now
        let client = try TimedSocket(port: server.port)
        client.send("GET /late-reset HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readAll().end, .error(ECONNRESET))
        XCTAssertGreaterThanOrEqual(clock.now - started, .milliseconds(200))
    }

    func testEmptyFaultClosesWithoutAByte() throws {
        let client = try TimedSocket(port: server.port)
        client.send("GET /empty HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let (arrivals, end) = client.readAll()
        XCTAssertEqual(arrivals.flatMap(\.bytes).count, 0)
        XCTAssertEqual(end, .eof)
    }

    func testMalformedFaultSendsSomethingThatIsNotAStatusLine() throws {
        let client = try TimedSocket(port: server.port)
        client.send("GET /malformed HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let (arrivals, end) = client.readAll()
        let bytes = arrivals.flatMap(\.bytes)
        XCTAssertFalse(bytes.isEmpty)
        XCTAssertEqual(end, .eof)
        let firstLine = String(decoding: bytes.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        XCTAssertNil(firstLine.wholeMatch(of: /HTTP\/1\.[01] [1-5][0-9][0-9]( .*)?/), firstLine)
    }

    func testTheServerKeepsServingAfterFaults() throws {
        for path in ["/reset", "/empty", "/malformed"] {
            let client = try TimedSocket(port: server.port)
            client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
            _ = client.readAll()
        }
        XCTAssertEqual(try get("/hello").text, "Hello, world!")
    }

    // MARK: - Throttle

    func testThrottledBodyDribblesInChunksAndArrivesComplete() throws {
        let expected = Array(String(repeating: "0123456789", count: 300).utf8)
        let client = try TimedSocket(port: server.port)
        client.send("GET /dribble HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let arrivals = client.read { decodeChunkedResponse($0) != nil }
        let decoded = try XCTUnwrap(decodeChunkedResponse(arrivals.flatMap(\.bytes)))
        XCTAssertTrue(decoded.head.contains("Transfer-Encoding: chunked"), decoded.head)
        XCTAssertTrue(decoded.body == expected, "body complete and in order (\(decoded.body.count) bytes)")
        // 3000 bytes at 1000 bytes/s leave in 100-byte chunks every 100 ms: about 2.9 s from first to last.
        let first = try XCTUnwrap(arrivals.first), last = try XCTUnwrap(arrivals.last)
        XCTAssertGreaterThanOrEqual(last.at - first.at, .milliseconds(2500))
        XCTAssertGreaterThan(arrivals.count, 10, "the body arrives in many reads, spread over time")
    }

    func testRequestsPipelinedBehindAThrottledBodyWaitTheirTurn() throws {
        let client = try RawClient(port: server.port)
        client.send("GET /dribble HTTP/1.1\r\nHost: localhost\r\n\r\nGET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let raw = client.readToEnd()
        let decoded = try XCTUnwrap(decodeChunkedResponse(raw), "the streamed response comes first, complete")
        XCTAssertEqual(decoded.body.count, 3000)
        let text = String(decoding: raw, as: UTF8.self)
        let second = try XCTUnwrap(text.range(of: "0\r\n\r\nHTTP/1.1 200 OK\r\n"), "then the pipelined response: \(text.suffix(300))")
        XCTAssertTrue(text[second.upperBound...].hasSuffix("\r\n\r\nHello, world!"))
    }

    func testThrottledBodyToAnHTTP10ClientEndsWithTheConnection() throws {
        let client = try TimedSocket(port: server.port)
        client.send("GET /dribble HTTP/1.0\r\nHost: localhost\r\n\r\n")
        let (arrivals, end) = client.readAll()
        XCTAssertEqual(end, .eof)
        let raw = arrivals.flatMap(\.bytes)
        let separator = try XCTUnwrap(raw.indices.first { Array(raw[$0..<min($0 + 4, raw.count)]) == [13, 10, 13, 10] })
        let head = String(decoding: raw[..<separator], as: UTF8.self)
        XCTAssertFalse(head.contains("Transfer-Encoding"), head)
        XCTAssertTrue(Array(raw[(separator + 4)...]) == Array(String(repeating: "0123456789", count: 300).utf8))
    }

    // MARK: - Sequences

    func testSequenceWithoutCycleRepeatsItsLastResponse() throws {
        let answers = try (0..<5).map { _ in try get("/once-then-last") }
        XCTAssertEqual(answers.map(\.text), ["first", "second", "last", "last", "last"])
        XCTAssertEqual(answers.map(\.status), [200, 202, 200, 200, 200])
    }

    func testCycledSequenceStartsOverAndCountsEveryRequestOnce() throws {
        XCTAssertEqual(try (0..<4).map { _ in try get("/round").text }, ["ping", "pong", "ping", "pong"])
        // From many threads at once: every request takes exactly one turn.
        let answers = ConcurrentAnswers()
        let port = server.port
        DispatchQueue.concurrentPerform(iterations: 40) { _ in
            answers.add(RawClient.get(port: port, "/round")?.text ?? "failed")
        }
        XCTAssertEqual(answers.counts, ["ping": 20, "pong": 20])
    }
}

/// Answers collected from concurrent requests.
private final class ConcurrentAnswers: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var answers: [String: Int] = [:]
    func add(_ answer: String) { lock.withLock { answers[answer, default: 0] += 1 } }
    var counts: [String: Int] { lock.withLock { answers } }
}
