import Foundation
import PagiTestSupport
import XCTest

/// `metrics: prometheus` and the admin listener, end to end: known traffic, then the Prometheus
/// text parsed and checked sample by sample.
final class MetricsIntegrationTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "site/hello.txt", "hello, metrics\n")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func startServer(admin: Bool = false) throws -> TestServer {
        try TestServer(yaml: """
            server:
              access_log: {to: off}
            \(admin ? "  admin: {listen: \"127.0.0.1:0\"}" : "")
            hosts:
              - names: [localhost]
                routes:
                  - path: /files/
                    static: site
                  - path: /metrics
                    metrics: prometheus
            """, directory: dir)
    }

    private func scrape(_ port: Int) throws -> PrometheusText {
        let response = try XCTUnwrap(RawClient.get(port: port, "/metrics"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        return try PrometheusText(response.text)
    }

    /// A request is recorded just after its response is handed to the socket, so a scrape on
    /// another connection may come first: scrape until `settled` holds (or give the last scrape).
    private func scrape(_ port: Int, until settled: (PrometheusText) -> Bool) throws -> PrometheusText {
        var metrics = try scrape(port)
        for _ in 0..<100 where !settled(metrics) {
            Thread.sleep(forTimeInterval: 0.02)
            metrics = try scrape(port)
        }
        return metrics
    }

    func testRequestsAreCountedByRouteMethodAndStatusClass() throws {
        let server = try startServer()
        defer { server.stop() }
        var filesBodyBytes = 0
        for _ in 0..<3 {
            let response = RawClient.get(port: server.port, "/files/hello.txt")
            XCTAssertEqual(response?.status, 200)
            filesBodyBytes += response?.body.count ?? 0
        }
        let missing = RawClient.get(port: server.port, "/files/missing.txt")
        XCTAssertEqual(missing?.status, 404)
        filesBodyBytes += missing?.body.count ?? 0
        XCTAssertEqual(RawClient.get(port: server.port, "/nowhere/at/all")?.status, 404)
        let delete = RawClient.get(port: server.port, "/files/hello.txt", method: "DELETE")
        XCTAssertEqual(delete?.status, 405)
        filesBodyBytes += delete?.body.count ?? 0

        let requests = "pagi_http_requests_total"
        // Six requests so far, all on /files/ or unmatched (the scrapes are on /metrics).
        let metrics = try scrape(server.port) { metrics in
            metrics.samples.filter { $0.name == requests && $0.labels["route"] != "/metrics" }.reduce(0) { $0 + $1.value } == 6
        }
        XCTAssertEqual(metrics.value(requests, ["host": "localhost", "route": "/files/", "method": "GET", "status": "2xx"]), 3)
        XCTAssertEqual(metrics.value(requests, ["host": "localhost", "route": "/files/", "method": "GET", "status": "4xx"]), 1)
        XCTAssertEqual(metrics.value(requests, ["host": "localhost", "route": "unmatched", "method": "GET", "status": "4xx"]), 1,
                       "a path no route matches is counted under one label, never under its raw path")
        XCTAssertEqual(metrics.value(requests, ["host": "localhost", "route": "/files/", "method": "DELETE", "status": "4xx"]), 1)
        XCTAssertFalse(metrics.samples.contains { $0.labels["route"]?.contains("hello") == true || $0.labels["route"] == "/nowhere/at/all" })
        XCTAssertEqual(metrics.value("pagi_http_sent_bytes_total", ["host": "localhost", "route": "/files/"]).map(Int.init),
                       filesBodyBytes)
        XCTAssertGreaterThan(filesBodyBytes, 3 * "hello, metrics\n".utf8.count, "the 404 page counts too")
        XCTAssertEqual(metrics.value("pagi_pubsub_messages_total", [:]), 0)
    }

    func testLatencyHistogramBucketsAreCumulative() throws {
        let server = try startServer()
        defer { server.stop() }
        for _ in 0..<5 { XCTAssertEqual(RawClient.get(port: server.port, "/files/hello.txt")?.status, 200) }
        let count = "pagi_http_request_duration_seconds_count"
        let metrics = try scrape(server.port) { $0.value(count, ["host": "localhost", "route": "/files/"]) == 5 }
        let buckets = metrics.samples
            .filter { $0.name == "pagi_http_request_duration_seconds_bucket" && $0.labels["route"] == "/files/" }
            .map { (bound: $0.labels["le"] == "+Inf" ? Double.infinity : Double($0.labels["le"] ?? "") ?? -1, count: $0.value) }
            .sorted { $0.bound < $1.bound }
        XCTAssertGreaterThan(buckets.count, 5)
        XCTAssertFalse(buckets.contains { $0.bound < 0 }, "every bucket has a numeric 'le'")
        for (lower, upper) in zip(buckets, buckets.dropFirst()) { XCTAssertLessThanOrEqual(lower.count, upper.count) }
        XCTAssertEqual(buckets.last?.count, 5)
        XCTAssertEqual(metrics.value(count, ["host": "localhost", "route": "/files/"]), 5)
        XCTAssertGreaterThan(try XCTUnwrap(metrics.value("pagi_http_request_duration_seconds_sum", ["host": "localhost", "route": "/files/"])), 0)
    }

    func testOpenConnectionsGaugeFollowsConnections() throws {
        let server = try startServer()
        defer { server.stop() }
        var idle = try (0..<2).map { _ in try RawClient(port: server.port) }
        for client in idle {
            client.send("GET /files/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            XCTAssertEqual(client.readResponse()?.status, 200)
        }
        // The two idle keep-alive connections plus the one scraping.
        XCTAssertEqual(try scrape(server.port).value("pagi_open_connections", [:]), 3)
        idle.removeAll()  // closes their sockets
        let open = try scrape(server.port) { $0.value("pagi_open_connections", [:]) == 1 }.value("pagi_open_connections", [:])
        XCTAssertEqual(open, 1, "closed connections leave the gauge; the scraping one remains")
    }

    func testEachServerHasItsOwnMetrics() throws {
        let first = try startServer()
        defer { first.stop() }
        let second = try startServer()
        defer { second.stop() }
        for _ in 0..<2 { XCTAssertEqual(RawClient.get(port: first.port, "/files/hello.txt")?.status, 200) }
        let labels = ["host": "localhost", "route": "/files/", "method": "GET", "status": "2xx"]
        XCTAssertEqual(try scrape(first.port) { $0.value("pagi_http_requests_total", labels) == 2 }.value("pagi_http_requests_total", labels), 2)
        XCTAssertNil(try scrape(second.port).value("pagi_http_requests_total", labels))
    }

    func testOpenAPIOperationsAreCountedUnderTheirOwnPattern() throws {
        try writeFile(dir, "api/users.yaml", OpenAPIFixtures.usersSpec)
        let server = try TestServer(yaml: """
            hosts:
              - names: [localhost]
                routes:
                  - {path: /api/, openapi: {spec: api/users.yaml}}
                  - {path: /metrics, metrics: prometheus}
            """, directory: dir)
        defer { server.stop() }
        for id in [7, 8] { XCTAssertEqual(RawClient.get(port: server.port, "/api/users/\(id)")?.status, 200) }
        XCTAssertEqual(RawClient.get(port: server.port, "/api/orders")?.status, 404)
        let operation = ["host": "localhost", "route": "/api/users/{id}", "method": "GET", "status": "2xx"]
        let unknown = ["host": "localhost", "route": "/api/", "method": "GET", "status": "4xx"]
        let metrics = try scrape(server.port) {
            $0.value("pagi_http_requests_total", unknown) == 1 && $0.value("pagi_http_requests_total", operation) == 2
        }
        XCTAssertEqual(metrics.value("pagi_http_requests_total", operation), 2, "one series per operation, not per id")
        XCTAssertEqual(metrics.value("pagi_http_requests_total", unknown), 1, "a path of no operation counts under the mount")
    }

    func testAdminListenerServesMetricsHealthAndRoutes() throws {
        let server = try startServer(admin: true)
        defer { server.stop() }
        let admin = try XCTUnwrap(server.server.adminAddress?.port)
        XCTAssertNotEqual(admin, server.port)
        XCTAssertEqual(RawClient.get(port: server.port, "/files/hello.txt")?.status, 200)

        let served = ["host": "localhost", "route": "/files/", "method": "GET", "status": "2xx"]
        let metrics = try scrape(admin) { $0.value("pagi_http_requests_total", served) == 1 }
        XCTAssertEqual(metrics.value("pagi_http_requests_total", served), 1)
        XCTAssertNil(metrics.value("pagi_http_requests_total", ["host": "*", "route": "/metrics", "method": "GET", "status": "2xx"]),
                     "scrapes of the admin listener are not counted as traffic")

        let health = try XCTUnwrap(RawClient.get(port: admin, "/health"))
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.header("Content-Type"), "application/json")
        XCTAssertTrue(health.text.contains(#""status":"ok""#), health.text)

        let routes = try XCTUnwrap(RawClient.get(port: admin, "/routes"))
        XCTAssertEqual(routes.status, 200)
        XCTAssertTrue(routes.text.hasPrefix("HOST"), routes.text)
        XCTAssertTrue(routes.text.contains("/files/") && routes.text.contains("static") && routes.text.contains("metrics"), routes.text)

        XCTAssertEqual(RawClient.get(port: admin, "/files/hello.txt")?.status, 404, "the admin listener serves only its own routes")
        let post = try XCTUnwrap(RawClient.get(port: admin, "/metrics", method: "POST"))
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.header("Allow"), "GET, HEAD, OPTIONS")
    }
}

/// The Prometheus text exposition format, parsed: `name{label="value",...} number` lines
/// (comments skipped, label values unescaped).
struct PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]

    init(_ text: String) throws {
        samples = try text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { line in
            try Self.parse(Substring(line))
        }
    }

    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    private static func parse(_ line: Substring) throws -> Sample {
        var rest = line[...]
        let name = String(rest.prefix { $0 != "{" && $0 != " " })
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let key = String(rest.prefix { $0 != "=" })
                rest = rest.dropFirst(key.count)
                guard rest.hasPrefix("=\"") else { throw ParseError(line: String(line)) }
                rest = rest.dropFirst(2)
                var value = ""
                while let character = rest.first, character != "\"" {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        rest = rest.dropFirst()
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(character)
                    }
                }
                guard rest.first == "\"" else { throw ParseError(line: String(line)) }
                rest = rest.dropFirst()
                labels[key] = value
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { throw ParseError(line: String(line)) }
            }
            rest = rest.dropFirst()
        }
        guard let value = Double(rest.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") else {
            throw ParseError(line: String(line))
        }
        return Sample(name: name, labels: labels, value: value)
    }

    struct ParseError: Error {
        let line: String
    }
}
