import Foundation
import NIOSSL
import PagiTestSupport
import XCTest

/// TLS listeners end to end (docs/tls.md): certificates chosen by SNI, plain HTTP on the TLS port,
/// files read in chunks where sendfile cannot encrypt, minimum version, client certificates,
/// certificates re-read on reload, the handshake under the header timeout.
final class TLSIntegrationTests: XCTestCase {
    private var dir: URL!
    private var ca: TestCertificateAuthority!
    private var server: TestServer!
    private let big = deterministicBytes(count: 3 * 1024 * 1024 + 17)

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        ca = try TestCertificateAuthority(in: dir.appendingPathComponent("certs"))
        try ca.issue(["a.test"], as: "a")
        try ca.issue(["*.b.test"], as: "b")
        try ca.issue(["c.test"], as: "c")
        try writeFile(dir, "site/big.bin", big)
        try writeFile(dir, "site/small.txt", "small file\n")
    }

    override func tearDownWithError() throws {
        server?.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func hostsYAML(top: String = "", extraRoutes: String = "") -> String {
        """
        server:
          access_log: {to: off}
          timeouts: {header: 1s}
        \(top)
        hosts:
          - names: [a.test]
            tls: {cert: certs/a.crt, key: certs/a.key}
            routes:
              - {path: /, respond: {body: "host a over {{scheme}}"}}
          - names: ["*.b.test"]
            tls: {cert: certs/b.crt, key: certs/b.key}
            routes:
              - {path: /, respond: {body: "host b"}}
          - names: [c.test]
            default: true
            tls: {cert: certs/c.crt, key: certs/c.key}
            routes:
              - {path: /files/, static: {root: site}}
              - {path: /, respond: {body: "host c"}}
        \(extraRoutes)
        """
    }

    private func certificate(_ name: String) throws -> NIOSSLCertificate {
        try XCTUnwrap(NIOSSLCertificate.fromPEMFile(dir.appendingPathComponent("certs/\(name).crt").path).first)
    }

    private func options(_ name: String?) -> TLSClient.Options {
        TLSClient.Options(serverName: name, trusting: ca.certificate)
    }

    func testEachHostOffersItsOwnCertificateByNameAndOtherNamesGetTheDefaultHosts() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        // Full verification: the certificate must be valid for the name asked.
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("a.test"))?.text, "host a over https")
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("x.b.test"))?.text, "host b")
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("c.test"))?.text, "host c")
        // A name no host claims, and no name at all: the default host's certificate.
        var unknown = options("unknown.test")
        unknown.verifyName = false
        XCTAssertEqual(try TLSClient(port: server.port, unknown).peerCertificate(), try certificate("c"))
        var nameless = options(nil)
        nameless.verifyName = false
        XCTAssertEqual(try TLSClient(port: server.port, nameless).peerCertificate(), try certificate("c"))
    }

    func testATopLevelCertificateServesNamesWithoutTheirOwn() throws {
        try ca.issue(["top.test", "plain.test"], as: "top")
        server = try TestServer(yaml: """
            server: {access_log: {to: off}}
            tls: {cert: certs/top.crt, key: certs/top.key}
            hosts:
              - names: [a.test]
                tls: {cert: certs/a.crt, key: certs/a.key}
                routes: [{path: /, respond: {body: a}}]
              - names: [plain.test]
                routes: [{path: /, respond: {body: plain}}]
            """, directory: dir, tls: true)
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("plain.test"))?.text, "plain")
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("a.test"))?.text, "a")
    }

    func testPlainHTTPSentToTheTLSPortIsAnswered400AndTheServerServesOn() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        let plain = try XCTUnwrap(RawClient.get(port: server.port, "/"))
        XCTAssertEqual(plain.status, 400)
        XCTAssertTrue(plain.text.contains("HTTPS"), plain.text)
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("c.test"))?.text, "host c")
    }

    func testFilesOverTLSAreByteExactWithRangesAndKeepAlive() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        let client = try TLSClient(port: server.port, options("c.test"))
        try client.send("GET /files/big.bin HTTP/1.1\r\nHost: c.test\r\n\r\n")
        let whole = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(whole.status, 200)
        XCTAssertEqual(whole.body.count, big.count)
        XCTAssertTrue(whole.body == big, "the file arrives byte for byte")
        // The same connection goes on: a range, then two ranges (multipart), then a small file.
        try client.send("GET /files/big.bin HTTP/1.1\r\nHost: c.test\r\nRange: bytes=1000000-1000099\r\n\r\n")
        let range = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(range.status, 206)
        XCTAssertEqual(range.body, Array(big[1_000_000..<1_000_100]))
        try client.send("GET /files/big.bin HTTP/1.1\r\nHost: c.test\r\nRange: bytes=0-9,-10\r\n\r\n")
        let parts = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(parts.status, 206)
        XCTAssertTrue(parts.header("Content-Type")?.hasPrefix("multipart/byteranges") == true)
        let text = String(decoding: parts.body, as: UTF8.self)
        XCTAssertTrue(text.contains("Content-Range: bytes 0-9/\(big.count)"), text)
        XCTAssertTrue(text.contains("Content-Range: bytes \(big.count - 10)-\(big.count - 1)/\(big.count)"), text)
        try client.send("GET /files/small.txt HTTP/1.1\r\nHost: c.test\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "small file\n")
        // Pipelined behind a file read in chunks: the next answer waits for its last byte.
        try client.send("GET /files/big.bin HTTP/1.1\r\nHost: c.test\r\n\r\nGET /files/small.txt HTTP/1.1\r\nHost: c.test\r\n\r\n")
        XCTAssertTrue(client.readResponse()?.body == big)
        XCTAssertEqual(client.readResponse()?.text, "small file\n")
    }

    func testMinimumVersionOneThreeRefusesATLS12Client() throws {
        server = try TestServer(yaml: """
            server: {access_log: {to: off}}
            tls: {cert: certs/c.crt, key: certs/c.key, min_version: "1.3"}
            hosts:
              - names: [c.test]
                routes: [{path: /, respond: {body: ok}}]
            """, directory: dir, tls: true)
        var old = options("c.test")
        old.maximumVersion = .tlsv12
        XCTAssertThrowsError(try TLSClient(port: server.port, old))
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("c.test"))?.text, "ok")
    }

    func testTLS12IsAcceptedByDefault() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        var old = options("c.test")
        old.maximumVersion = .tlsv12
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", old)?.text, "host c")
    }

    func testClientCertificatesRequiredOrOptionalAndTheSubjectReachesTemplates() throws {
        let client = try ca.issue(["client.test"], as: "client")
        for (auth, withoutCertificate) in [("require", false), ("optional", true)] {
            server = try TestServer(yaml: """
                server: {access_log: {to: off}}
                tls: {cert: certs/c.crt, key: certs/c.key, client_ca: certs/ca.crt, client_auth: \(auth)}
                hosts:
                  - names: [c.test]
                    routes: [{path: /, respond: {body: "ok {{client_subject}}"}}]
                """, directory: dir, tls: true)
            var anonymous = options("c.test")
            anonymous.maximumVersion = .tlsv12  // TLS 1.2 reports the refusal in the handshake itself
            let answered = (try? TLSClient.get(port: server.port, "/", anonymous))??.text
            XCTAssertEqual(answered == "ok ", withoutCertificate, "client_auth \(auth) without a certificate")
            var identified = options("c.test")
            identified.clientCertificate = client
            // The verified subject reaches templates.
            XCTAssertEqual(try TLSClient.get(port: server.port, "/", identified)?.text, "ok CN=client.test", "client_auth \(auth)")
            server.stop()
        }
    }

    /// A request whose `Host` would have been served with other TLS settings than those its
    /// connection's handshake chose is refused 421 when either side verifies client certificates:
    /// naming another site in the hello must not skip a host's `client_ca`. Without client
    /// certificates a connection may ask for any host, as with nginx.
    func testAHostThatVerifiesClientsCannotBeReachedThroughAnotherNamesHandshake() throws {
        let client = try ca.issue(["client.test"], as: "client")
        server = try TestServer(yaml: """
            server: {access_log: {to: access.log, format: json}}
            hosts:
              - names: [a.test]
                tls: {cert: certs/a.crt, key: certs/a.key, client_ca: certs/ca.crt}
                routes: [{path: /, respond: {body: "private {{client_subject}}"}}]
              - names: [c.test]
                default: true
                tls: {cert: certs/c.crt, key: certs/c.key}
                routes: [{path: /, respond: {body: public}}]
              - names: [x.b.test]
                tls: {cert: certs/b.crt, key: certs/b.key}
                routes: [{path: /, respond: {body: "b"}}]
            """, directory: dir, tls: true)
        let fronted = try TLSClient(port: server.port, options("c.test"))
        try fronted.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        XCTAssertEqual(fronted.readResponse()?.status, 421)
        var identified = options("a.test")
        identified.clientCertificate = client
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", identified)?.text, "private CN=client.test")
        // The line is written once the answer is handed to the socket: the client may read it first.
        let logFile = dir.appendingPathComponent("access.log")
        let logged = #""scheme":"https","client_subject":"CN=client.test"}"#
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline, !((try? String(contentsOf: logFile, encoding: .utf8))?.contains(logged) ?? false) {
            Thread.sleep(forTimeInterval: 0.02)
        }
        let log = try String(contentsOf: logFile, encoding: .utf8)
        XCTAssertTrue(log.contains(logged), log)
        let carried = try TLSClient(port: server.port, identified)
        try carried.send("GET / HTTP/1.1\r\nHost: c.test\r\n\r\n")
        XCTAssertEqual(carried.readResponse()?.status, 421)
        // Neither verifies clients: another host on the same connection is served.
        let other = try TLSClient(port: server.port, options("c.test"))
        try other.send("GET / HTTP/1.1\r\nHost: x.b.test\r\n\r\n")
        XCTAssertEqual(other.readResponse()?.text, "b")
    }

    /// WebSocket (wss://) and SSE go through TLS unchanged: the protocol switch leaves the TLS
    /// handler in place, and events are flushed one by one.
    func testAWebSocketEchoesAndAnEventStreamFlowsOverTLS() throws {
        server = try TestServer(yaml: """
            server: {access_log: {to: off}}
            tls: {cert: certs/c.crt, key: certs/c.key}
            hosts:
              - names: [c.test]
                routes:
                  - {path: /ws, websocket: {echo: true, compression: false}}
                  - {path: /ticks, sse: {ticker: {every: 50ms, data: "tick {{count}}"}}}
            """, directory: dir, tls: true)
        let socket = try TLSClient(port: server.port, options("c.test"))
        try socket.send("GET /ws HTTP/1.1\r\nHost: c.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let head = String(decoding: try XCTUnwrap(socket.read(through: Array("\r\n\r\n".utf8))), as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        XCTAssertTrue(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), head)
        // A masked text frame "hello"; the echo comes back unmasked.
        let mask: [UInt8] = [1, 2, 3, 4]
        let payload = Array("hello".utf8).enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try socket.send([0x81, 0x80 | 5] + mask + payload)
        XCTAssertEqual(socket.read(count: 7), [0x81, 5] + Array("hello".utf8))

        let events = try TLSClient(port: server.port, options("c.test"))
        try events.send("GET /ticks HTTP/1.1\r\nHost: c.test\r\nAccept: text/event-stream\r\n\r\n")
        let started = String(decoding: try XCTUnwrap(events.read(through: Array("\r\n\r\n".utf8))), as: UTF8.self)
        XCTAssertTrue(started.contains("text/event-stream"), started)
        let two = String(decoding: try XCTUnwrap(events.read(through: Array("tick 2".utf8))), as: UTF8.self)
        XCTAssertTrue(two.contains("data: tick 1"), two)
    }

    func testAReloadOffersTheNewCertificateAndOpenConnectionsKeepWorking() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        let open = try TLSClient(port: server.port, options("c.test"))
        try open.send("GET / HTTP/1.1\r\nHost: c.test\r\n\r\n")
        XCTAssertEqual(open.readResponse()?.text, "host c")
        // The certificate is renewed in place (same files, new contents), then the server reloads.
        try ca.issue(["c.test"], as: "c")
        try server.reload(yaml: hostsYAML(), tls: true)
        XCTAssertEqual(try TLSClient(port: server.port, options("c.test")).peerCertificate(), try certificate("c"))
        try open.send("GET / HTTP/1.1\r\nHost: c.test\r\n\r\n")
        XCTAssertEqual(open.readResponse()?.text, "host c", "a connection opened before the reload is still served")
    }

    func testAReloadWithAnUnusableKeyIsRefusedAndTheOldCertificateServesOn() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        let before = try certificate("c")
        // A key that does not belong to the certificate.
        try FileManager.default.removeItem(atPath: dir.appendingPathComponent("certs/c.key").path)
        try FileManager.default.copyItem(atPath: dir.appendingPathComponent("certs/a.key").path,
                                         toPath: dir.appendingPathComponent("certs/c.key").path)
        XCTAssertThrowsError(try server.reload(yaml: hostsYAML(), tls: true)) { error in
            XCTAssertTrue("\(error)".contains("config.yaml:"), "\(error)")
        }
        XCTAssertEqual(try TLSClient(port: server.port, options("c.test")).peerCertificate(), before)
    }

    func testAHandshakeThatStallsIsClosedAtTheHeaderTimeout() throws {
        server = try TestServer(yaml: hostsYAML(), directory: dir, tls: true)
        let stalled = try RawClient(port: server.port, timeout: 5)
        stalled.send([0x16, 0x03, 0x01, 0x00, 0x50])  // a ClientHello record that never completes
        let started = Date()
        XCTAssertTrue(stalled.waitForClose(), "closed by the server")
        XCTAssertLessThan(Date().timeIntervalSince(started), 4)
        XCTAssertEqual(try TLSClient.get(port: server.port, "/", options("a.test"))?.text, "host a over https")
    }
}
