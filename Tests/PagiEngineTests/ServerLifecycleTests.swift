import Foundation
import PagiTestSupport
import XCTest

/// Connection limits, access logging and graceful shutdown of the real server.
final class ServerLifecycleTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "site/a.txt", "alpha")
        try writeFile(dir, "site/big.bin", deterministicBytes(count: 8 * 1024 * 1024))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func yaml(server: String) -> String {
        """
        server:
        \(server)
        hosts:
          - names: [localhost]
            routes:
              - path: /
                static: site
        """
    }

    func testConnectionsBeyondTheLimitGet503() throws {
        let server = try TestServer(yaml: yaml(server: "  access_log: {to: off}\n  limits: {connections: 2}"), directory: dir)
        defer { server.stop() }
        let first = try RawClient(port: server.port)
        let second = try RawClient(port: server.port)
        first.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(first.readResponse()?.status, 200)
        let third = try RawClient(port: server.port)
        XCTAssertEqual(third.readResponse()?.status, 503)
        second.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(second.readResponse()?.status, 200, "admitted connections keep working")
    }

    func testAccessLogFormats() throws {
        for format in ["common", "combined", "json"] {
            let log = dir.appendingPathComponent("access-\(format).log")
            let server = try TestServer(yaml: yaml(server: "  access_log: {to: \(log.path), format: \(format)}"), directory: dir)
            _ = RawClient.get(port: server.port, "/a.txt?q=1", headers: ["User-Agent": "tester/1.0", "Referer": "http://ref/"])
            _ = RawClient.get(port: server.port, "/missing")
            server.stop()
            let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, 2, format)
            // Two connections, two event loops: the lines may land in either order.
            let first = try XCTUnwrap(lines.first { $0.contains("/a.txt") })
            let missing = try XCTUnwrap(lines.first { $0.contains("/missing") })
            switch format {
            case "json":
                let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
                XCTAssertEqual(object["status"] as? Int, 200)
                XCTAssertEqual(object["uri"] as? String, "/a.txt?q=1")
                XCTAssertEqual(object["bytes"] as? Int, 5)
                XCTAssertEqual(object["user_agent"] as? String, "tester/1.0")
            default:
                let pattern = #"^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET /a\.txt\?q=1 HTTP/1\.1" 200 5"#
                XCTAssertNotNil(first.range(of: pattern, options: .regularExpression), first)
                XCTAssertEqual(first.hasSuffix("\"http://ref/\" \"tester/1.0\""), format == "combined", first)
                XCTAssertTrue(missing.contains("\" 404 "), missing)
            }
        }
    }

    func testClientAddressComesFromTrustedProxiesOnly() throws {
        for (trusted, expected) in [("[127.0.0.0/8]", ["203.0.113.5", "198.51.100.7"]), ("[10.0.0.0/8]", ["127.0.0.1", "127.0.0.1"])] {
            let log = dir.appendingPathComponent("proxy-\(expected[0]).log")
            let server = try TestServer(yaml: yaml(server: "  access_log: {to: \(log.path), format: json}\n  trusted_proxies: \(trusted)"), directory: dir)
            _ = RawClient.get(port: server.port, "/a.txt", headers: ["X-Forwarded-For": "198.51.100.1, 203.0.113.5"])
            _ = RawClient.get(port: server.port, "/a.txt", headers: ["Forwarded": "for=\"198.51.100.7:4711\";proto=https"])
            server.stop()
            let clients = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["client"] as? String
            }
            // Two connections, two event loops: the lines may land in either order.
            XCTAssertEqual(clients.sorted(), expected.sorted(), "trusted_proxies: \(trusted)")
        }
    }

    func testShutdownLetsInFlightDownloadsFinishAndRefusesNewConnections() throws {
        let server = try TestServer(yaml: yaml(server: "  access_log: {to: off}\n  timeouts: {shutdown: 10s}"), directory: dir)
        let client = try RawClient(port: server.port)
        client.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        // Let the response start, then shut down while most of it is still unread.
        Thread.sleep(forTimeInterval: 0.2)
        let stopped = expectation(description: "shutdown finished")
        DispatchQueue.global().async {
            server.stop()
            stopped.fulfill()
        }
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertThrowsError(try RawClient(port: server.port), "the listener is closed")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.body.count, 8 * 1024 * 1024, "the in-flight download completes")
        XCTAssertTrue(client.waitForClose())
        wait(for: [stopped], timeout: 10)
    }

    func testIdleConnectionsCloseAtShutdown() throws {
        let server = try TestServer(yaml: yaml(server: "  access_log: {to: off}"), directory: dir)
        let client = try RawClient(port: server.port)
        client.send("GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
        let start = Date()
        server.stop()
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertTrue(client.waitForClose())
    }
}
