import Foundation
import PagiTestSupport
import XCTest

/// `proxy` end to end (docs/proxy.md), against upstreams that are pagi-serve servers themselves:
/// balancing, forwarding headers, prefix stripping, a dead upstream ejected while idempotent
/// requests are retried and a POST is not, 504, an SSE stream passed on event by event, and a
/// long answer streamed byte for byte.
final class ProxyIntegrationTests: XCTestCase {
    private var dir: URL!
    private var servers: [TestServer] = []
    /// Python upstreams, kept (and stopped) until the test ends.
    private var pythonUpstreams: [PythonServer] = []
    private let big = deterministicBytes(count: 2 * 1024 * 1024 + 3)

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "upstream/big.bin", big)
    }

    override func tearDownWithError() throws {
        for server in servers { server.stop() }
        for upstream in pythonUpstreams { upstream.stop() }
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// An upstream that says who it is and what it got.
    private func upstream(_ name: String, idle: String = "75s") throws -> Int {
        let folder = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("checks"), withIntermediateDirectories: true)
        let server = try TestServer(yaml: """
            server: {timeouts: {idle: \(idle)}}
            hosts:
              - names: ["*"]
                routes:
                  - {path: /files/, static: {root: "\(dir.appendingPathComponent("upstream").path)"}}
                  - {path: /checks/, static: {root: "\(folder.appendingPathComponent("checks").path)"}}
                  - {path: /slow, respond: {body: late, delay: 2s}}
                  - {path: /events, sse: {ticker: {every: 100ms, data: "tick {{count}}"}}}
                  - {path: /ws, websocket: echo}
                  - {path: /, respond: {status: 200, body: "\(name) {{method}} {{uri}} {{headers}} {{body}}"}}
            """, directory: folder)
        servers.append(server)
        return server.port
    }

    private func proxy(_ routes: String) throws -> TestServer {
        let server = try TestServer(yaml: """
            hosts:
              - names: [site.test]
                routes:
            \(routes)
            """, directory: dir)
        servers.append(server)
        return server
    }

    private func get(_ server: TestServer, _ path: String, method: String = "GET", headers: [String: String] = [:]) -> RawResponse? {
        RawClient.get(port: server.port, path, headers: ["Host": "site.test"].merging(headers) { $1 }, method: method)
    }

    /// The request headers an upstream printed (`{{headers}}`, a JSON object) in its answer.
    private func headersSeen(in answer: RawResponse) throws -> [String: String] {
        let text = answer.text
        let start = try XCTUnwrap(text.firstIndex(of: "{")), end = try XCTUnwrap(text.lastIndex(of: "}"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text[start...end].utf8)) as? [String: String])
    }

    func testRoundRobinSpreadsTheRequestsAndEachAnswerComesBack() throws {
        let (a, b) = (try upstream("A"), try upstream("B"))
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(a)\", \"http://127.0.0.1:\(b)\"]}}")
        let names = (0..<10).compactMap { _ in get(server, "/x?y=1")?.text.split(separator: " ").first.map(String.init) }
        XCTAssertEqual(names.filter { $0 == "A" }.count, 5, "\(names)")
        XCTAssertEqual(names.filter { $0 == "B" }.count, 5, "\(names)")
        XCTAssertTrue(get(server, "/x?y=1")?.text.hasPrefix("A GET /x?y=1 ") ?? false)
    }

    func testIPHashKeepsAClientOnOneUpstreamAndLeastConnAvoidsABusyOne() throws {
        let (a, b) = (try upstream("A"), try upstream("B"))
        let server = try proxy("""
                  - {path: /hash/, proxy: {to: ["http://127.0.0.1:\(a)", "http://127.0.0.1:\(b)"], balance: ip_hash, strip_prefix: true}}
                  - {path: /least/, proxy: {to: ["http://127.0.0.1:\(a)", "http://127.0.0.1:\(b)"], balance: least_conn, strip_prefix: true}}
            """)
        let hashed = Set((0..<6).compactMap { _ in get(server, "/hash/")?.text.first })
        XCTAssertEqual(hashed.count, 1, "one client, one upstream: \(hashed)")
        // A slow request holds one upstream; the next requests go to the other.
        let port = server.port
        let busy = Thread { _ = RawClient.get(port: port, "/least/slow", headers: ["Host": "site.test"]) }
        busy.start()
        Thread.sleep(forTimeInterval: 0.3)
        let free = (0..<4).compactMap { _ in get(server, "/least/")?.text.first }
        XCTAssertEqual(Set(free).count, 1, "\(free)")
    }

    func testTheUpstreamSeesForwardingHeadersAndNoHopByHopFields() throws {
        let a = try upstream("A")
        let server = try proxy("""
                  - {path: /api/, proxy: {to: ["http://127.0.0.1:\(a)/base/"], strip_prefix: true, headers: {set: {X-Env: prod}}}}
                  - {path: /host/, proxy: {to: ["http://127.0.0.1:\(a)"], headers: {set: {Host: inner.test}}}}
            """)
        let answer = try XCTUnwrap(get(server, "/api/users/7?full=1", headers: [
            "Connection": "X-Private", "X-Private": "for this hop only", "X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6",
        ]))
        XCTAssertEqual(answer.status, 200)
        XCTAssertTrue(answer.text.hasPrefix("A GET /base/users/7?full=1 "), answer.text)
        let seen = try headersSeen(in: answer)
        XCTAssertEqual(seen["host"], "site.test", "the client's Host is kept")
        XCTAssertEqual(seen["x-forwarded-for"], "127.0.0.1", "a chain from an untrusted client is replaced")
        XCTAssertEqual(seen["x-forwarded-proto"], "http")
        XCTAssertEqual(seen["x-forwarded-host"], "site.test")
        XCTAssertEqual(seen["forwarded"], #"for=127.0.0.1;proto=http;host="site.test""#)
        XCTAssertEqual(seen["x-env"], "prod")
        XCTAssertNil(seen["x-private"], "a field the client's Connection names is not forwarded")
        let renamed = try XCTUnwrap(get(server, "/host/"))
        XCTAssertTrue(renamed.text.contains(#""host":"inner.test""#), renamed.text)
    }

    /// Hop-by-hop fields of the upstream's answer stay between the proxy and the upstream: the fixed
    /// ones and those its `Connection` names. The upstream is Python's http.server, which sends what
    /// it is told.
    func testTheAnswersHopByHopFieldsStayWithTheUpstream() throws {
        let upstream = try PythonServer(#"""
        import http.server, sys
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                body = b"from python"
                self.send_response(200)
                self.send_header("Connection", "X-Hop-Secret, keep-alive")
                self.send_header("X-Hop-Secret", "for the proxy only")
                self.send_header("Keep-Alive", "timeout=5")
                self.send_header("Proxy-Authenticate", "Basic")
                self.send_header("X-End-To-End", "kept")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args): pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """#)
        pythonUpstreams.append(upstream)
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(upstream.port)\"]}}")
        let answer = get(server, "/")
        XCTAssertEqual(answer?.text, "from python")
        XCTAssertEqual(answer?.header("X-End-To-End"), "kept")
        for field in ["X-Hop-Secret", "Keep-Alive", "Proxy-Authenticate"] {
            XCTAssertNil(answer?.header(field), "\(field) is for one connection only")
        }
    }

    /// Behind a trusted proxy, the chain it forwarded is kept and the proxy's address appended.
    func testTheChainOfATrustedProxyIsKeptAndAppendedTo() throws {
        let a = try upstream("A")
        let server = try TestServer(yaml: """
            server: {trusted_proxies: [127.0.0.1/32]}
            hosts:
              - names: [site.test]
                routes:
                  - {path: /, proxy: {to: ["http://127.0.0.1:\(a)"]}}
            """, directory: dir)
        servers.append(server)
        let answer = try XCTUnwrap(RawClient.get(port: server.port, "/", headers: [
            "Host": "site.test", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
            "Forwarded": "for=203.0.113.9;proto=https",
        ]))
        let seen = try headersSeen(in: answer)
        XCTAssertEqual(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1")
        XCTAssertEqual(seen["x-forwarded-proto"], "https", "the scheme the client used, as the trusted proxy said")
        XCTAssertEqual(seen["forwarded"], #"for=203.0.113.9;proto=https, for=127.0.0.1;proto=https;host="site.test""#)
    }

    func testADeadUpstreamIsLeftOutAndOnlyIdempotentRequestsAreRetried() throws {
        let a = try upstream("A")
        let dead = try freePort()
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(dead)\", \"http://127.0.0.1:\(a)\"]}}")
        // The first request is the dead upstream's turn: a POST is not sent twice, so it fails.
        XCTAssertEqual(get(server, "/order", method: "POST")?.status, 502)
        // The dead upstream is now left out: the POSTs and GETs that follow reach A.
        for _ in 0..<4 {
            XCTAssertEqual(get(server, "/order", method: "POST")?.status, 200)
            XCTAssertEqual(get(server, "/page")?.text.first, "A")
        }
    }

    /// Connections to an upstream are kept alive and reused — the upstream (Python) answers with
    /// the port the proxy connected from; one the upstream closed while idle is replaced by a fresh
    /// one — even for a POST, and without counting as the upstream's failure.
    func testAKeptAliveConnectionIsReusedAndOneTheUpstreamClosedIsReplaced() throws {
        let upstream = try PythonServer(#"""
        import http.server, sys
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 0.3  # an idle keep-alive connection is closed after 0.3 s
            def answer(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = f"{self.command} {self.client_address[1]}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = answer
            def log_message(self, *args): pass
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """#)
        pythonUpstreams.append(upstream)
        // One thread: one loop, one pool, whichever connection the client comes on.
        let server = try TestServer(yaml: """
            server: {threads: 1}
            hosts:
              - names: [site.test]
                routes: [{path: /, proxy: {to: ["http://127.0.0.1:\(upstream.port)"]}}]
            """, directory: dir)
        servers.append(server)
        let first = try XCTUnwrap(get(server, "/one")?.text.split(separator: " ").last)
        XCTAssertEqual(get(server, "/two")?.text.split(separator: " ").last, first, "the same upstream connection")
        Thread.sleep(forTimeInterval: 0.6)
        let post = try XCTUnwrap(get(server, "/three", method: "POST", headers: ["Content-Length": "0"])?.text)
        XCTAssertTrue(post.hasPrefix("POST "), post)
        XCTAssertNotEqual(post.split(separator: " ").last, first, "a new connection replaced the closed one")
        XCTAssertEqual(get(server, "/four")?.text.split(separator: " ").last, post.split(separator: " ").last)
    }

    /// Active health checks take an upstream whose check fails out of the balancing before any
    /// request fails there, and bring it back once it passes again.
    func testHealthChecksTakeAnUpstreamOutAndBringItBack() throws {
        let (a, b) = (try upstream("A"), try upstream("B"))
        for name in ["A", "B"] { try writeFile(dir, "\(name)/checks/ok.txt", "ok") }
        let server = try proxy("""
                  - {path: /, proxy: {to: ["http://127.0.0.1:\(a)", "http://127.0.0.1:\(b)"], health: {path: /checks/ok.txt, interval: 50ms, rise: 2, fall: 2}}}
            """)
        func names() -> [Character] { (0..<8).compactMap { _ in get(server, "/")?.text.first } }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("B/checks/ok.txt"))
        // Static answers may be reused for a second (docs/performance.md): then two failed checks.
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(Set(names()), ["A"], "B's check fails (404): B is out")
        try writeFile(dir, "B/checks/ok.txt", "ok")
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(Set(names()), ["A", "B"], "B passes again: B is back")
    }

    /// `health.status` says which answers pass: told that only 4xx does, the check of an upstream
    /// that answers 200 fails and the one that answers 404 passes.
    func testTheHealthCheckStatusThatPassesIsConfigurable() throws {
        let (a, b) = (try upstream("A"), try upstream("B"))
        try writeFile(dir, "A/checks/ok.txt", "ok")
        let server = try proxy("""
                  - {path: /, proxy: {to: ["http://127.0.0.1:\(a)", "http://127.0.0.1:\(b)"], health: {path: /checks/ok.txt, interval: 50ms, rise: 1, fall: 1, status: 4xx}}}
            """)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(Set((0..<6).compactMap { _ in get(server, "/")?.text.first }), ["B"])
    }

    /// An `https://` upstream is verified: against the route's `ca`, by name, the request goes
    /// through; against the system's roots (no `ca`) the test CA's certificate is refused (502). A
    /// `ca` that cannot be read is a configuration error, never an unverified upstream.
    func testAnHTTPSUpstreamIsVerifiedAgainstTheRoutesCA() throws {
        let ca = try TestCertificateAuthority(in: dir.appendingPathComponent("certs"))
        let issued = try ca.issue(["localhost"], as: "upstream")
        let upstream = try TestServer(yaml: """
            hosts:
              - names: [localhost]
                tls: {cert: "\(issued.cert)", key: "\(issued.key)"}
                routes: [{path: /, respond: {body: "secure {{scheme}} {{uri}}"}}]
            """, directory: dir, tls: true)
        servers.append(upstream)
        let server = try proxy("""
                  - {path: /trusted/, proxy: {to: ["https://localhost:\(upstream.port)"], ca: certs/ca.crt, strip_prefix: true}}
                  - {path: /, proxy: {to: ["https://localhost:\(upstream.port)"]}}
            """)
        XCTAssertEqual(get(server, "/trusted/x")?.text, "secure https /x")
        XCTAssertEqual(get(server, "/x")?.status, 502, "not signed by a CA of the system")
        XCTAssertThrowsError(try proxy("""
                  - {path: /, proxy: {to: ["https://localhost:\(upstream.port)"], ca: certs/missing.crt}}
            """)) { error in
            XCTAssertTrue("\(error)".contains("missing.crt"), "\(error)")
        }
    }

    func testEveryUpstreamDownIs502AndASlowOneIs504() throws {
        let a = try upstream("A")
        let server = try proxy("""
                  - {path: /down, proxy: {to: ["http://127.0.0.1:\(try freePort())"]}}
                  - {path: /slow, proxy: {to: ["http://127.0.0.1:\(a)"], timeout: 300ms}}
            """)
        let down = try XCTUnwrap(get(server, "/down"))
        XCTAssertEqual(down.status, 502)
        XCTAssertFalse(down.text.contains("127.0.0.1"), "no upstream address reaches the client: \(down.text)")
        let started = Date()
        XCTAssertEqual(get(server, "/slow")?.status, 504)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5)
    }

    func testServerSentEventsPassThroughOneByOne() throws {
        let a = try upstream("A")
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(a)\"]}}")
        let stream = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertEqual(stream.status, 200)
        var arrivals: [Date] = []
        for expected in 1...4 {
            XCTAssertEqual(stream.next()?.data, "tick \(expected)")
            arrivals.append(Date())
        }
        // 100 ms apart upstream, so apart here too: nothing waits for a buffer to fill.
        for (earlier, later) in zip(arrivals, arrivals.dropFirst()) {
            XCTAssertGreaterThan(later.timeIntervalSince(earlier), 0.05)
        }
    }

    /// A WebSocket handshake reaches the upstream, its 101 comes back, and the connections are
    /// glued: messages both ways, large ones too, and a close handshake.
    func testAWebSocketIsTunnelledToTheUpstream() throws {
        let a = try upstream("A")
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(a)\"]}}")
        let socket = try WebSocketClient(port: server.port, path: "/ws")
        XCTAssertEqual(socket.status, 101)
        XCTAssertNotNil(socket.header("Sec-WebSocket-Accept"))
        socket.send(text: "through the proxy")
        XCTAssertEqual(socket.readMessageFrame()?.text, "through the proxy")
        let large = deterministicBytes(count: 300_000)
        socket.send(binary: large)
        XCTAssertTrue(socket.readMessageFrame()?.payload == large)
        socket.sendClose(code: 1000)
        XCTAssertEqual(socket.readFrame()?.closeCode, 1000)
        XCTAssertTrue(socket.waitForTCPClose())
        // An upgrade to anything else is not passed on: the request is answered as a plain one.
        XCTAssertEqual(get(server, "/", headers: ["Upgrade": "h2c", "Connection": "Upgrade"])?.status, 200)
    }

    /// A WebSocket asked for over HTTP/2 (extended CONNECT, RFC 8441; Firefox does so when the
    /// server allows it) reaches an HTTP/1.1 upstream as an RFC 6455 handshake with a key of the
    /// proxy's; the client's stream gets a 200 and carries the frames both ways, a 100 KB message and
    /// the close handshake included.
    func testAWebSocketOverHTTP2IsTunnelledToTheUpstream() throws {
        try XCTSkipUnless((try ExternalTool.run("env", ["python3", "-c", "import h2"])).status == 0, "python3 with h2 is needed")
        let a = try upstream("A")
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(a)\"]}}")
        let script = #"""
        import os, socket, sys
        import h2.config, h2.connection, h2.events
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection(); s.sendall(c.data_to_send())
        received, events = b"", []
        def pump():
            global received
            data = s.recv(65536)
            if not data: raise SystemExit("closed")
            for event in c.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    received += event.data
                events.append(event)
            s.sendall(c.data_to_send())
        def wait(kind):
            while True:
                for index, event in enumerate(events):
                    if isinstance(event, kind):
                        del events[:index + 1]
                        return event
                pump()
        wait(h2.events.RemoteSettingsChanged)
        c.send_headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/ws"),
                           (":authority", "site.test"), ("sec-websocket-version", "13")])
        s.sendall(c.data_to_send())
        headers = dict(wait(h2.events.ResponseReceived).headers)
        print("status", headers[b":status"].decode(), "accept" if b"sec-websocket-accept" in headers else "no accept")
        def frame(opcode, payload):
            mask = os.urandom(4)
            size = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 127]) + len(payload).to_bytes(8, "big")
            return bytes([0x80 | opcode]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        def message():
            global received
            while True:
                if len(received) >= 2:
                    size, start = received[1] & 0x7f, 2
                    if size == 126: size, start = int.from_bytes(received[2:4], "big"), 4
                    elif size == 127: size, start = int.from_bytes(received[2:10], "big"), 10
                    if len(received) >= start + size:
                        opcode, payload, received = received[0] & 0x0f, received[start:start + size], received[start + size:]
                        return opcode, payload
                pump()
        for payload in [b"through the proxy over h2", os.urandom(100_000)]:
            data = frame(2, payload)
            while data:
                room = min(c.local_flow_control_window(1), c.max_outbound_frame_size)
                if room <= 0:
                    wait(h2.events.WindowUpdated)
                    continue
                c.send_data(1, data[:room]); data = data[room:]
                s.sendall(c.data_to_send())
            opcode, echoed = message()
            print("echo", opcode, echoed == payload)
        c.send_data(1, frame(8, (1000).to_bytes(2, "big"))); s.sendall(c.data_to_send())
        opcode, code = message()
        print("close", opcode, int.from_bytes(code[:2], "big"))
        """#
        let run = try ExternalTool.run("env", ["python3", "-c", script, "\(server.port)"])
        XCTAssertEqual(run.output, "status 200 no accept\necho 2 True\necho 2 True\nclose 8 1000\n", run.errors)
    }

    func testALongAnswerIsStreamedByteForByte() throws {
        let a = try upstream("A")
        let server = try proxy("      - {path: /, proxy: {to: [\"http://127.0.0.1:\(a)\"]}}")
        let client = try RawClient(port: server.port)
        client.send("GET /files/big.bin HTTP/1.1\r\nHost: site.test\r\n\r\n")
        let answer = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.header("Content-Length"), String(big.count), "the upstream's length is kept")
        XCTAssertNil(answer.header("Transfer-Encoding"))
        XCTAssertTrue(answer.body == big, "\(answer.body.count) bytes")
        // The connection goes on after a streamed answer of known length.
        client.send("GET /files/big.bin HTTP/1.1\r\nHost: site.test\r\nRange: bytes=0-9\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.body, Array(big[0..<10]))
        // HEAD tells the length a GET gets, as the upstream said it.
        let headAnswer = get(server, "/files/big.bin", method: "HEAD")
        XCTAssertEqual(headAnswer?.status, 200)
        XCTAssertEqual(headAnswer?.header("Content-Length"), String(big.count))
        XCTAssertEqual(headAnswer?.body.count, 0)
    }
}
