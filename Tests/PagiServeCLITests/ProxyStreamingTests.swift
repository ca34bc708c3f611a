import Foundation
import PagiTestSupport
import Synchronization
import XCTest

/// Bodies streamed through `proxy` both ways (docs/proxy.md, *Streamed uploads*): a 1 GiB upload
/// and a 1 GiB download pass through the served binary while its resident memory stays flat —
/// against an upstream (Python) that first stalls, so nothing but backpressure can keep the
/// proxy from holding what the fast side sends. The upstream checks every MiB it receives.
final class ProxyStreamingTests: XCTestCase {
    private var dir: URL!
    private var processes: [ServedProcess] = []
    private var upstream: PythonServer?

    /// Blocks of the test stream: block k is 0, 1, … 255 repeated, its first 8 bytes replaced by k
    /// (big-endian), so a block lost, repeated or out of order is seen.
    private static let block = 1 << 20

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        for process in processes { process.kill() }
        upstream?.stop()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// The release build when scripts/test names one (a 1 GiB stream through a debug build takes
    /// minutes), else the debug build beside the tests.
    private var binary: URL {
        ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) } ?? ServedProcess.binary
    }

    private static let base = (0..<block).map { UInt8(truncatingIfNeeded: $0) }

    private static func block(_ index: Int) -> [UInt8] {
        var bytes = base
        withUnsafeBytes(of: UInt64(index).bigEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        return bytes
    }

    /// Python's http.server: `PUT /upload` waits a second, then reads the body (with a length or
    /// chunked) and answers how many bytes came and whether every block was intact; `GET
    /// /download?mib=N` sends N blocks with a `Content-Length`; `GET /last-upload` says how many bytes the
    /// last upload it read had, whole or cut off.
    private func startUpstream() throws -> Int {
        let server = try PythonServer(#"""
        import http.server, json, sys, time
        BLOCK = 1 << 20
        BASE = bytes(range(256)) * (BLOCK // 256)
        def block(k): return k.to_bytes(8, "big") + BASE[8:]
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            last_upload = -1  # bytes of the last upload read, whole or cut off
            def pieces(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return
                        yield self.rfile.read(size)
                        self.rfile.readline()
                else:
                    left = int(self.headers["Content-Length"])
                    while left > 0:
                        piece = self.rfile.read(min(left, BLOCK))
                        if not piece: return
                        left -= len(piece)
                        yield piece
            def do_PUT(self):
                if self.path == "/early":
                    # Refused before its body is read, as an application server does past its limit.
                    self.send_response(413)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return
                time.sleep(1)
                total, pending, index, intact = 0, b"", 0, True
                for piece in self.pieces():
                    total += len(piece)
                    pending += piece
                    while len(pending) >= BLOCK:
                        intact = intact and pending[:BLOCK] == block(index)
                        pending, index = pending[BLOCK:], index + 1
                intact = intact and (pending == block(index)[:len(pending)])
                Handler.last_upload = total
                body = json.dumps({"bytes": total, "intact": intact}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                if self.path == "/last-upload":
                    body = str(Handler.last_upload).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                mib = int(self.path.split("mib=")[1])
                self.send_response(200)
                self.send_header("Content-Length", str(mib * BLOCK))
                self.end_headers()
                for k in range(mib): self.wfile.write(block(k))
            def log_message(self, *args): pass
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """#)
        upstream = server
        return server.port
    }

    private func startProxy(to upstreamPort: Int, bodyTimeout: String = "10s") throws -> (port: Int, process: ServedProcess) {
        let port = try freePort()
        try writeFile(dir, "proxy.yaml", """
            server: {limits: {body_bytes: 2GiB}, timeouts: {body: \(bodyTimeout)}}
            hosts:
              - names: ["*"]
                routes:
                  - {path: /, proxy: {to: ["http://127.0.0.1:\(upstreamPort)"], timeout: 20s}}
            """)
        let process = try ServedProcess(arguments: ["proxy.yaml", "--listen", "127.0.0.1:\(port)"], directory: dir, binary: binary)
        processes.append(process)
        try process.waitForLog("listening on http://127.0.0.1:\(port)")
        return (port, process)
    }

    /// The highest resident set of `pid` while `work` runs, sampled every 20 ms, in MiB.
    private func peakResidentMiB(of pid: Int32, during work: () throws -> Void) rethrows -> Double {
        final class Sampling: Sendable {
            let peakKiB = Mutex(0)
            let done = Atomic(false)
        }
        let sampling = Sampling()
        Thread.detachNewThread {
            while !sampling.done.load(ordering: .relaxed) {
                let kib = residentKiB(pid)
                sampling.peakKiB.withLock { $0 = max($0, kib) }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        defer { sampling.done.store(true, ordering: .relaxed) }
        try work()
        return Double(sampling.peakKiB.withLock { $0 }) / 1024
    }

    private func upload(port: Int, blocks: Int, chunked: Bool) throws -> RawResponse? {
        let client = try RawClient(port: port, timeout: 60)
        let framing = chunked ? "Transfer-Encoding: chunked" : "Content-Length: \(blocks * Self.block)"
        client.send("PUT /upload HTTP/1.1\r\nHost: site.test\r\n\(framing)\r\n\r\n")
        for index in 0..<blocks {
            if chunked {
                // Chunks that do not line up with the blocks.
                let bytes = Self.block(index)
                for piece in [bytes[..<1000], bytes[1000...]] {
                    client.send(Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8))
                }
            } else {
                client.send(Self.block(index))
            }
        }
        if chunked { client.send("0\r\n\r\n") }
        return client.readResponse()
    }

    func testAOneGiBUploadAndDownloadPassWithFlatMemory() throws {
        let (port, proxy) = try startProxy(to: try startUpstream())
        // Warm up (and a chunked upload, forwarded chunked): what a first request allocates once
        // is not what the stream costs.
        let small = try upload(port: port, blocks: 3, chunked: true)
        XCTAssertEqual(small?.status, 200)
        XCTAssertEqual(small?.text, #"{"bytes": 3145728, "intact": true}"#)
        let before = Double(residentKiB(proxy.pid)) / 1024

        var answer: RawResponse?
        let uploadPeak = try peakResidentMiB(of: proxy.pid) {
            answer = try upload(port: port, blocks: 1024, chunked: false)
        }
        XCTAssertEqual(answer?.status, 200, proxy.log)
        XCTAssertEqual(answer?.text, #"{"bytes": 1073741824, "intact": true}"#)
        XCTAssertLessThan(uploadPeak - before, 64, "1 GiB up: RSS \(before) MiB → peak \(uploadPeak) MiB")

        var blocks = 0
        var intact = true
        var head = ""
        let downloadPeak = try peakResidentMiB(of: proxy.pid) {
            let client = try RawClient(port: port, timeout: 30)
            client.send("GET /download?mib=1024 HTTP/1.1\r\nHost: site.test\r\n\r\n")
            // A client that does not read at first: the proxy must not read the upstream meanwhile.
            Thread.sleep(forTimeInterval: 1)
            while client.buffer.firstRange(of: Array("\r\n\r\n".utf8)) == nil, client.fill() {}
            let headEnd = try XCTUnwrap(client.buffer.firstRange(of: Array("\r\n\r\n".utf8))).upperBound
            head = String(decoding: client.buffer[..<headEnd], as: UTF8.self)
            client.buffer.removeFirst(headEnd)
            // Each block's index checked as it passes.
            while blocks < 1024 {
                if client.buffer.count >= Self.block {
                    if client.buffer[0..<8].reduce(0, { $0 << 8 | Int($1) }) != blocks { intact = false }
                    client.buffer.removeFirst(Self.block)
                    blocks += 1
                } else if !client.fill(max: 1 << 20) {
                    break
                }
            }
            XCTAssertTrue(client.buffer.isEmpty, "nothing past the announced length")
        }
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        XCTAssertTrue(head.contains("Content-Length: 1073741824"), "the upstream's length is kept: \(head)")
        XCTAssertEqual(blocks, 1024)
        XCTAssertTrue(intact, "every block in order")
        XCTAssertLessThan(downloadPeak - before, 64, "1 GiB down: RSS \(before) MiB → peak \(downloadPeak) MiB")
        print("proxy RSS: \(before) MiB before; peak \(uploadPeak) MiB during the 1 GiB upload, \(downloadPeak) MiB during the download")
    }

    /// Over HTTP/2 (h2c, Python's `h2` as the client, honouring flow control) a 256 MiB upload
    /// streams too: the stream is read only while the upstream takes the body, so the client's
    /// window is not reopened and memory stays flat.
    func testAnUploadOverHTTP2StreamsWithFlatMemory() throws {
        try XCTSkipUnless((try ExternalTool.run("env", ["python3", "-c", "import h2"])).status == 0, "python3 with h2 is needed")
        let (port, proxy) = try startProxy(to: try startUpstream())
        let client = #"""
        import socket, sys, h2.connection, h2.config, h2.events
        port, mib = int(sys.argv[1]), int(sys.argv[2])
        BLOCK = 1 << 20
        BASE = bytes(range(256)) * (BLOCK // 256)
        s = socket.create_connection(("127.0.0.1", port))
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "PUT"), (":path", "/upload"), (":scheme", "http"), (":authority", "site.test"),
                             ("content-length", str(mib * BLOCK))])
        s.sendall(c.data_to_send())
        state = {"status": None, "body": b"", "done": False}
        def pump():
            data = s.recv(65536)
            if not data: sys.exit("closed by the server")
            for event in c.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived): state["status"] = dict(event.headers)[b":status"].decode()
                elif isinstance(event, h2.events.DataReceived):
                    state["body"] += event.data
                    c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded): state["done"] = True
                elif isinstance(event, h2.events.StreamReset): sys.exit(f"stream reset: {event.error_code}")
            s.sendall(c.data_to_send())
        for k in range(mib):
            data, offset = k.to_bytes(8, "big") + BASE[8:], 0
            while offset < len(data):
                room = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, len(data) - offset)
                if room <= 0:
                    pump()
                    continue
                c.send_data(sid, data[offset:offset + room])
                offset += room
                s.sendall(c.data_to_send())
        c.end_stream(sid)
        s.sendall(c.data_to_send())
        while not state["done"]: pump()
        print(state["status"], state["body"].decode())
        """#
        let small = try ExternalTool.run("env", ["python3", "-c", client, String(port), "2"])
        XCTAssertEqual(small.output.trimmingCharacters(in: .whitespacesAndNewlines), #"200 {"bytes": 2097152, "intact": true}"#, small.errors)
        let before = Double(residentKiB(proxy.pid)) / 1024
        var large: ExternalTool.Outcome?
        let peak = try peakResidentMiB(of: proxy.pid) {
            large = try ExternalTool.run("env", ["python3", "-c", client, String(port), "256"])
        }
        XCTAssertEqual(large?.output.trimmingCharacters(in: .whitespacesAndNewlines), #"200 {"bytes": 268435456, "intact": true}"#,
                       (large?.errors ?? "") + proxy.log)
        XCTAssertLessThan(peak - before, 64, "256 MiB up over HTTP/2: RSS \(before) MiB → peak \(peak) MiB")
        print("proxy RSS over HTTP/2: \(before) MiB before; peak \(peak) MiB during the 256 MiB upload")
    }

    /// An upstream that answers before the body is in (413 at once): the client gets that answer,
    /// then its connection is closed (the rest of its body has nowhere to go), and the proxy serves on.
    func testAnAnswerBeforeTheWholeStreamedBodyEndsTheConnection() throws {
        let (port, proxy) = try startProxy(to: try startUpstream())
        let client = try RawClient(port: port, timeout: 10)
        client.send("PUT /early HTTP/1.1\r\nHost: site.test\r\nContent-Length: \(8 * Self.block)\r\n\r\n")
        client.send(Self.block(0))
        XCTAssertEqual(client.readResponse()?.status, 413, proxy.log)
        XCTAssertTrue(client.waitForClose(), "closed after the answer")
        XCTAssertEqual(try upload(port: port, blocks: 2, chunked: false)?.text, #"{"bytes": 2097152, "intact": true}"#)
    }

    /// A streamed body whose client stops sending: what it sent had already gone on to the upstream
    /// (which a buffered body never would), the engine answers 408, the upstream connection is given
    /// up — the upstream sees the body cut off — and the proxy serves the next client.
    func testAClientThatStopsInTheMiddleOfAStreamedBodyGets408() throws {
        let (port, proxy) = try startProxy(to: try startUpstream(), bodyTimeout: "2s")
        let client = try RawClient(port: port, timeout: 20)
        client.send("PUT /upload HTTP/1.1\r\nHost: site.test\r\nContent-Length: \(4 * Self.block)\r\n\r\n")
        client.send(Self.block(0))
        let answer = client.readResponse()
        XCTAssertEqual(answer?.status, 408, proxy.log)
        var seen: String?
        let deadline = Date().addingTimeInterval(5)
        while seen != String(Self.block), Date() < deadline {
            seen = RawClient.get(port: port, "/last-upload")?.text
            if seen != String(Self.block) { Thread.sleep(forTimeInterval: 0.1) }
        }
        XCTAssertEqual(seen, String(Self.block), "the upstream read the first MiB, then the body ended")
        XCTAssertEqual(try upload(port: port, blocks: 2, chunked: false)?.text, #"{"bytes": 2097152, "intact": true}"#)
    }
}

/// The resident set of `pid` in KiB (`VmRSS` of /proc/PID/status), 0 when it cannot be read.
private func residentKiB(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
}
