import Foundation
import PagiTestSupport
import Synchronization
import XCTest

/// HTTP/2 end to end with real clients (docs/http2.md): curl and nghttp over TLS (ALPN `h2`) and
/// over cleartext by prior knowledge (h2c); every kind of answer goes through a stream unchanged.
final class HTTP2IntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!
    private var certificate = ""
    private let big = deterministicBytes(count: 2 * 1024 * 1024 + 5)

    override func setUpWithError() throws {
        try XCTSkipUnless(ExternalTool.isInstalled("curl") && ExternalTool.isInstalled("nghttp"),
                          "curl and nghttp (nghttp2-client) are needed: scripts/test installs them")
        dir = try makeTemporaryDirectory()
        let ca = try TestCertificateAuthority(in: dir.appendingPathComponent("certs"))
        try ca.issue(["localhost"], as: "localhost")
        certificate = ca.certificate
        try writeFile(dir, "site/big.bin", big)
    }

    override func tearDownWithError() throws {
        server?.stop()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func serve(tls: Bool, http2: Bool = true) throws {
        server = try TestServer(yaml: """
            server:
              access_log: {to: access.log}
              http2: \(http2)
            tls: {cert: certs/localhost.crt, key: certs/localhost.key}
            hosts:
              - names: [localhost]
                routes:
                  - {path: /files/, static: {root: site}}
                  - {path: /echo, methods: [POST], middleware: [{body_limit: 16}], respond: {body: "got {{body}} over {{scheme}}"}}
                  - {path: /late, respond: {body: late, delay: 100ms}}
                  - {path: /old, redirect: {to: "https://{{host}}/new", status: 308}}
                  - {path: /boom, respond: {fault: reset}}
                  - {path: /ticks, sse: {ticker: {every: 50ms, data: "tick {{count}}"}}}
                  - {path: /ws, websocket: echo}
                  - {path: /, respond: {body: "hello"}}
            """, directory: dir, tls: tls)
    }

    private var secureURL: String { "https://localhost:\(server.port)" }
    private var plainURL: String { "http://127.0.0.1:\(server.port)" }

    /// curl over TLS, told to trust the test CA and to reach localhost at the server's port.
    private func curl(_ arguments: [String]) throws -> ExternalTool.Outcome {
        try ExternalTool.run("curl", ["-s", "--max-time", "10", "--cacert", certificate,
                                      "--resolve", "localhost:\(server.port):127.0.0.1"] + arguments, in: dir)
    }

    func testALPNChoosesHTTP2AndEveryKindOfAnswerComesThrough() throws {
        try serve(tls: true)
        let format = "%{http_version} %{http_code}\\n"
        let simple = try curl(["--http2", "-w", " " + format, "\(secureURL)/"])
        XCTAssertEqual(simple.output, "hello 2 200\n", simple.errors)
        let file = try curl(["--http2", "-o", "got.bin", "-w", format, "\(secureURL)/files/big.bin"])
        XCTAssertEqual(file.output, "2 200\n", file.errors)
        XCTAssertTrue(try Data(contentsOf: dir.appendingPathComponent("got.bin")) == Data(big), "the file arrives byte for byte")
        let range = try curl(["--http2", "-r", "1000-1009", "-o", "range.bin", "-w", format, "\(secureURL)/files/big.bin"])
        XCTAssertEqual(range.output, "2 206\n")
        XCTAssertEqual(Array(try Data(contentsOf: dir.appendingPathComponent("range.bin"))), Array(big[1000..<1010]))
        let posted = try curl(["--http2", "-d", "hi", "-w", " " + format, "\(secureURL)/echo"])
        XCTAssertEqual(posted.output, "got hi over https 2 200\n")
        let tooLarge = try curl(["--http2", "-d", String(repeating: "x", count: 100), "-o", "/dev/null", "-w", format, "\(secureURL)/echo"])
        XCTAssertEqual(tooLarge.output, "2 413\n")
        let missing = try curl(["--http2", "-o", "/dev/null", "-w", format, "\(secureURL)/files/nothing-here"])
        XCTAssertEqual(missing.output, "2 404\n")
        let head = try curl(["--http2", "-I", "\(secureURL)/files/big.bin"])
        XCTAssertTrue(head.output.hasPrefix("HTTP/2 200"), head.output)
        XCTAssertTrue(head.output.contains("content-length: \(big.count)"), head.output)
        // Conditionals and redirects are the same answers over a stream.
        let tag = try XCTUnwrap(head.output.split(separator: "\r\n").first { $0.hasPrefix("etag: ") }?.dropFirst(6))
        let revalidated = try curl(["--http2", "-H", "If-None-Match: \(tag)", "-o", "/dev/null", "-w", format, "\(secureURL)/files/big.bin"])
        XCTAssertEqual(revalidated.output, "2 304\n")
        let moved = try curl(["--http2", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "\(secureURL)/old"])
        XCTAssertEqual(moved.output, "308 https://localhost/new")
        let late = try curl(["--http2", "-w", " " + format, "\(secureURL)/late"])
        XCTAssertEqual(late.output, "late 2 200\n")
        let log = try String(contentsOf: dir.appendingPathComponent("access.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("\"GET /files/big.bin HTTP/2.0\" 200 \(big.count)"), log)
    }

    /// `publish` (to an SSE subscriber on another stream), `openapi` with validation, `metrics` and
    /// a throttled body: handlers see the same requests over streams.
    func testPublishOpenAPIMetricsAndThrottleOverHTTP2() throws {
        try writeFile(dir, "api/users.yaml", OpenAPIFixtures.usersSpec)
        let slow = String(repeating: "0123456789", count: 300)
        server = try TestServer(yaml: """
            tls: {cert: certs/localhost.crt, key: certs/localhost.key}
            hosts:
              - names: [localhost]
                routes:
                  - {path: /news, methods: [POST], publish: news}
                  - {path: /feed, sse: {subscribe: news}}
                  - {path: /api/, openapi: {spec: api/users.yaml, validate: true}}
                  - {path: /metrics, metrics: prometheus}
                  - {path: /slow, respond: {body: "\(slow)", throttle: 10KiB/s}}
            """, directory: dir, tls: true)
        let format = " %{http_version} %{http_code}"
        // A subscriber on its own HTTP/2 connection, then a message published over another one.
        let subscriber = Process()
        subscriber.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        subscriber.arguments = ["-sN", "--http2", "--max-time", "3", "--cacert", certificate,
                                "--resolve", "localhost:\(server.port):127.0.0.1", "-o", dir.appendingPathComponent("feed.txt").path, "\(secureURL)/feed"]
        try subscriber.run()
        let deadline = Date().addingTimeInterval(5)
        var published = try curl(["--http2", "-d", "over h2", "-w", format, "\(secureURL)/news"])
        while !published.output.contains("\"receivers\":1"), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            published = try curl(["--http2", "-d", "over h2", "-w", format, "\(secureURL)/news"])
        }
        XCTAssertEqual(published.output, "{\"channel\":\"news\",\"receivers\":1}\n 2 202")
        subscriber.waitUntilExit()
        let feed = try String(contentsOf: dir.appendingPathComponent("feed.txt"), encoding: .utf8)
        XCTAssertTrue(feed.contains("data: over h2\n\n"), feed)
        // OpenAPI: an example by operation, and a body its schema refuses.
        let user = try curl(["--http2", "-w", format, "\(secureURL)/api/users/7"])
        XCTAssertEqual(user.output, #"{"id":1,"name":"Ada"} 2 200"#)
        let refused = try curl(["--http2", "-H", "Content-Type: application/json", "-d", "{}", "-o", "/dev/null", "-w", format, "\(secureURL)/api/users"])
        XCTAssertEqual(refused.output, " 2 400")
        // A throttled body arrives whole, paced (3,000 bytes at 10 KiB/s: about 0.3 s).
        let started = Date()
        let paced = try curl(["--http2", "-w", format, "\(secureURL)/slow"])
        XCTAssertEqual(paced.output, slow + " 2 200")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.2)
        // The metrics counted the streams under their routes.
        let metrics = try curl(["--http2", "\(secureURL)/metrics"]).output
        XCTAssertTrue(metrics.contains(#"pagi_http_requests_total{host="localhost",route="/api/users/{id}",method="GET",status="2xx"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"pagi_http_requests_total{host="localhost",route="/slow",method="GET",status="2xx"} 1"#), metrics)
    }

    /// The server-wide limits hold on a stream as on an HTTP/1.1 connection.
    func testServerLimitsHoldOnStreams() throws {
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
              limits: {body_bytes: 1KiB, uri_bytes: 64}
            hosts:
              - names: [localhost]
                routes: [{path: /, respond: {body: "ok"}}]
            """, directory: dir)
        let format = "%{http_version} %{http_code}"
        let big = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", format,
                                                "-d", String(repeating: "x", count: 4096), "\(plainURL)/"])
        XCTAssertEqual(big.output, "2 413")
        let long = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", format,
                                                 "\(plainURL)/" + String(repeating: "a", count: 100)])
        XCTAssertEqual(long.output, "2 414")
        let fine = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-w", " " + format, "-d", "small", "\(plainURL)/"])
        XCTAssertEqual(fine.output, "ok 2 200")
    }

    /// A stream whose request body never ends is answered 408 at `timeouts.body` (stream-level
    /// slowloris): curl sends its HEADERS, then nothing for two seconds — without the timer the
    /// upload would end when its input closes and be answered 200.
    func testAStreamWhoseBodyStallsIsAnswered408() throws {
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
              timeouts: {body: 1s}
            hosts:
              - names: [localhost]
                routes: [{path: /, respond: {body: "ok"}}]
            """, directory: dir)
        let stalled = try ExternalTool.run("sh", ["-c", "sleep 2 | curl -s --http2-prior-knowledge -T - -o /dev/null "
                                                  + "-w '%{http_version} %{http_code}' --max-time 8 \(plainURL)/"])
        XCTAssertEqual(stalled.output, "2 408", stalled.errors)
    }

    func testCleartextHTTP2ByPriorKnowledge() throws {
        try serve(tls: false)
        let answer = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-w", " %{http_version}", "\(plainURL)/"])
        XCTAssertEqual(answer.output, "hello 2")
        // HTTP/1.1 on the same listener as before.
        XCTAssertEqual(RawClient.get(port: server.port, "/")?.text, "hello")
    }

    /// `Upgrade: h2c` (curl --http2 and nghttp -u on http:// URLs): a 101, then the request is
    /// answered on stream 1 and the connection goes on in HTTP/2; a request with a body stays on 1.1.
    func testUpgradeToH2CAnswersTheFirstRequestOnStreamOne() throws {
        try serve(tls: false)
        let upgraded = try ExternalTool.run("curl", ["-sv", "--http2", "-w", " %{http_version}\n", "\(plainURL)/", "\(plainURL)/files/big.bin", "-o", "/dev/null", "-o", "big.bin"], in: dir)
        XCTAssertTrue(upgraded.errors.contains("< HTTP/1.1 101 Switching Protocols"), upgraded.errors)
        XCTAssertEqual(upgraded.output, " 2\n 2\n")
        XCTAssertTrue(try Data(contentsOf: dir.appendingPathComponent("big.bin")) == Data(big), "the second request, on the upgraded connection")
        let nghttp = try ExternalTool.run("nghttp", ["-uv", "\(plainURL)/", "\(plainURL)/late"])
        XCTAssertTrue(nghttp.output.contains("HTTP Upgrade success"), nghttp.output)
        XCTAssertTrue(nghttp.output.contains("recv (stream_id=1) :status: 200"), nghttp.output)
        XCTAssertTrue(nghttp.output.contains("hello") && nghttp.output.contains("late"), nghttp.output)
        let posted = try ExternalTool.run("curl", ["-s", "--http2", "-d", "hi", "-w", " %{http_version}", "\(plainURL)/echo"])
        XCTAssertEqual(posted.output, "got hi over http 1.1")
        let log = try String(contentsOf: dir.appendingPathComponent("access.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("\"GET / HTTP/2.0\" 200"), log)
    }

    /// WebSocket over HTTP/2 (RFC 8441): SETTINGS_ENABLE_CONNECT_PROTOCOL, an extended CONNECT
    /// answered 200, messages as DATA frames both ways, and a stream of a route that is no
    /// WebSocket refused rather than told it is open. Spoken with Python's h2.
    func testWebSocketsOverHTTP2ByExtendedConnect() throws {
        // The Python on PATH, where scripts/test installs h2.
        try XCTSkipUnless((try ExternalTool.run("env", ["python3", "-c", "import h2"])).status == 0,
                          "Python's h2 is needed: scripts/test installs it")
        try serve(tls: false)
        let script = #"""
        import os, socket, sys
        import h2.config, h2.connection, h2.events
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection(); s.sendall(c.data_to_send())
        def wait(kind, stream=None):
            while True:
                data = s.recv(65536)
                if not data: raise SystemExit("closed")
                for event in c.receive_data(data):
                    if isinstance(event, kind) and (stream is None or event.stream_id == stream):
                        s.sendall(c.data_to_send()); return event
                s.sendall(c.data_to_send())
        settings = wait(h2.events.RemoteSettingsChanged)
        print("enable_connect_protocol", settings.changed_settings[8].new_value)
        def connect(stream, path):
            c.send_headers(stream, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                    (":path", path), (":authority", "localhost"), ("sec-websocket-version", "13")])
            s.sendall(c.data_to_send())
            return dict(wait(h2.events.ResponseReceived, stream).headers)[b":status"].decode()
        print("status", connect(1, "/ws"))
        payload = b"hello over h2"; mask = os.urandom(4)
        c.send_data(1, bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        s.sendall(c.data_to_send())
        echo = b""
        while len(echo) < 2 or len(echo) < 2 + echo[1]:
            echo += wait(h2.events.DataReceived, 1).data
        print("echo", echo[2:].decode(), hex(echo[0]))
        print("plain route", connect(3, "/"))
        """#
        let run = try ExternalTool.run("env", ["python3", "-c", script, "\(server.port)"])
        XCTAssertEqual(run.output, "enable_connect_protocol 1\nstatus 200\necho hello over h2 0x81\nplain route 400\n", run.errors)
    }

    func testHTTP2FalseKeepsEveryConnectionOnHTTP11() throws {
        try serve(tls: true, http2: false)
        let answer = try curl(["--http2", "-w", " %{http_version}", "\(secureURL)/"])
        XCTAssertEqual(answer.output, "hello 1.1")
        server.stop()
        try serve(tls: false, http2: false)
        let notUpgraded = try ExternalTool.run("curl", ["-s", "--http2", "-w", " %{http_version}", "\(plainURL)/"])
        XCTAssertEqual(notUpgraded.output, "hello 1.1", "no Upgrade: h2c without HTTP/2")
    }

    func testAFaultResetsItsStreamAndTheConnectionServesTheNext() throws {
        try serve(tls: false)
        let session = try ExternalTool.run("nghttp", ["-v", "\(plainURL)/boom", "\(plainURL)/"])
        XCTAssertTrue(session.output.contains("recv RST_STREAM frame"), session.output)
        XCTAssertTrue(session.output.contains("hello"), "the other stream of the same connection is answered\n" + session.output)
    }

    func testServerSentEventsFlowOneByOneOverHTTP2() throws {
        try serve(tls: true)
        let stream = try curl(["--http2", "-N", "--max-time", "1", "\(secureURL)/ticks"])
        XCTAssertTrue(stream.output.contains("data: tick 1\n"), stream.output)
        XCTAssertTrue(stream.output.contains("data: tick 3\n"), stream.output)
    }

    func testAGracefulShutdownFinishesOpenStreamsAfterGoAway() throws {
        try serve(tls: false)
        let result = Mutex<ExternalTool.Outcome?>(nil)
        let done = DispatchSemaphore(value: 0)
        let url = "\(plainURL)/late"
        Thread.detachNewThread {
            let outcome = try? ExternalTool.run("nghttp", ["-v", url])
            result.withLock { $0 = outcome }
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.05)
        let stopped = server.stopInBackground()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(stopped.wait(timeout: .now() + 5), .success)
        let session = try XCTUnwrap(result.withLock { $0 })
        XCTAssertTrue(session.output.contains("late"), "the stream under way is answered\n" + session.output)
        XCTAssertTrue(session.output.contains("recv GOAWAY frame"), session.output)
    }
}
