import Foundation
import PagiTestSupport
import XCTest

/// `redirect` (docs/configuration.md §9.3) and `health` (§5.9) end to end.
final class RedirectHealthIntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [localhost, old.localhost]
                routes:
                  - path: /short
                    redirect: /new
                  - path: /r301
                    redirect: {to: /moved, status: 301}
                  - path: /r303
                    redirect: {to: /see, status: 303}
                  - path: /r307
                    redirect: {to: /temp, status: 307}
                  - path: /r308/{rest...}
                    redirect: {to: "https://{{host}}/v2/{{path.rest}}?from={{query.from}}", status: 308}
                  - path: /everything/
                    redirect: {to: "https://secure.example{{uri}}", status: 301}
                  - path: /healthz
                    health: true
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func get(_ path: String, host: String = "localhost", method: String = "GET") throws -> RawResponse {
        let client = try RawClient(port: server.port)
        client.send("\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
        return try XCTUnwrap(client.readResponse(head: method == "HEAD"))
    }

    func testEveryRedirectStatusWithItsLocation() throws {
        for (path, status, location) in [("/short", 302, "/new"), ("/r301", 301, "/moved"), ("/r303", 303, "/see"), ("/r307", 307, "/temp")] {
            let response = try get(path)
            XCTAssertEqual(response.status, status, path)
            XCTAssertEqual(response.header("Location"), location, path)
            XCTAssertEqual(response.header("Content-Type"), "text/html; charset=utf-8", path)
            XCTAssertTrue(response.text.contains("href=\"\(location)\""), response.text)
        }
    }

    func testTemplatedTargets() throws {
        let response = try get("/r308/a/b?from=mail", host: "Old.LocalHost")
        XCTAssertEqual(response.status, 308)
        XCTAssertEqual(response.header("Location"), "https://old.localhost/v2/a/b?from=mail")
        XCTAssertEqual(try get("/everything/x/y?q=1%202").header("Location"), "https://secure.example/everything/x/y?q=1%202")
    }

    func testRequestValuesCannotSplitTheLocationField() throws {
        let response = try get("/r308/x?from=a%0D%0ASet-Cookie:%20evil=1%20%22%3C%3E%C3%A9")
        XCTAssertEqual(response.status, 308)
        XCTAssertNil(response.header("Set-Cookie"), "no header may be injected")
        XCTAssertEqual(response.header("Location"), "https://localhost/v2/x?from=a%0D%0ASet-Cookie:%20evil=1%20%22%3C%3E%C3%A9")
        XCTAssertFalse(response.text.contains("<>"), "the link in the body is HTML-escaped: \(response.text)")
    }

    func testHeadOfARedirectHasTheLocationAndNoBody() throws {
        let response = try get("/short", method: "HEAD")
        XCTAssertEqual(response.status, 302)
        XCTAssertEqual(response.header("Location"), "/new")
        XCTAssertTrue(response.body.isEmpty)
    }

    func testHealthAnswersOKAsJSON() throws {
        let response = try get("/healthz")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Type"), "application/json")
        XCTAssertEqual(response.header("Cache-Control"), "no-store")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        XCTAssertEqual(object["status"] as? String, "ok")
        let uptime = try XCTUnwrap(object["uptime_seconds"] as? Int)
        XCTAssertGreaterThanOrEqual(uptime, 0)
    }
}
