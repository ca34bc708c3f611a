import Foundation
import PagiTestSupport
import XCTest

/// Error bodies (docs/configuration.md §12) over sockets: HTML for browsers, JSON for `Accept: application/json`,
/// the host's own `errors:` pages, and never a file-system path.
final class ErrorBodyIntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!
    private let browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "errors/404.html", "<h1>pages: lost</h1>")
        try writeFile(dir, "errors/410.html", "<h1>pages: gone for good</h1>")
        try writeFile(dir, "site/folder/readme.txt", "no index here")
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [pages.localhost]
                errors: {404: errors/404.html, 410: errors/410.html}
                routes:
                  - path: /gone
                    respond: {status: 410}
                  - path: /gone-with-body
                    respond: {status: 410, json: {reason: archived}}
                  - path: /
                    static: site
              - names: [plain.localhost]
                default: true
                routes:
                  - path: /only-get
                    methods: [GET]
                    respond: {body: ok}
                  - path: /
                    static: site
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func request(_ host: String, _ path: String, accept: String?, method: String = "GET") throws -> RawResponse {
        let client = try RawClient(port: server.port)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        if let accept { text += "Accept: \(accept)\r\n" }
        client.send(text + "\r\n")
        return try XCTUnwrap(client.readResponse(head: method == "HEAD"))
    }

    private func assertJSONError(_ response: RawResponse, _ status: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(response.status, status, file: file, line: line)
        XCTAssertEqual(response.header("Content-Type"), "application/json", file: file, line: line)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], file: file, line: line)
        XCTAssertEqual(object["status"] as? Int, status, file: file, line: line)
        XCTAssertEqual(object["error"] as? String, ErrorResponsesText.reason(status), file: file, line: line)
    }

    private func assertLeaksNothing(_ response: RawResponse, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(response.text.contains(dir.path), "a file-system path leaked: \(response.text)", file: file, line: line)
        XCTAssertFalse(response.text.contains("site/"), response.text, file: file, line: line)
    }

    func testBrowsersGetTheHostsOwnPageAndOtherHostsTheBuiltInOne() throws {
        let custom = try request("pages.localhost", "/no/such/file", accept: browserAccept)
        XCTAssertEqual(custom.status, 404)
        XCTAssertEqual(custom.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertEqual(custom.text, "<h1>pages: lost</h1>")

        let builtIn = try request("plain.localhost", "/no/such/file", accept: browserAccept)
        XCTAssertEqual(builtIn.status, 404)
        XCTAssertEqual(builtIn.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertTrue(builtIn.text.contains("<h1>404 Not Found</h1>"), builtIn.text)
        XCTAssertFalse(builtIn.text.contains("no/such/file"), "the request path is not echoed")
        assertLeaksNothing(builtIn)
    }

    func testJSONClientsGetJSONEvenWhereTheHostHasAPage() throws {
        try assertJSONError(try request("pages.localhost", "/missing", accept: "application/json"), 404)
        try assertJSONError(try request("plain.localhost", "/missing", accept: "application/problem+json, text/html;q=0.5"), 404)
        // No Accept at all, or one that ranks HTML first: HTML.
        XCTAssertEqual(try request("plain.localhost", "/missing", accept: nil).header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertEqual(try request("plain.localhost", "/missing", accept: "text/html, application/json;q=0.9")
            .header("Content-Type"), "text/html; charset=utf-8")
    }

    func testAnEmptyStubErrorUsesTheHostPageButAStubBodyIsKept() throws {
        XCTAssertEqual(try request("pages.localhost", "/gone", accept: browserAccept).text, "<h1>pages: gone for good</h1>")
        try assertJSONError(try request("pages.localhost", "/gone", accept: "application/json"), 410)
        let own = try request("pages.localhost", "/gone-with-body", accept: browserAccept)
        XCTAssertEqual(own.status, 410)
        XCTAssertEqual(own.text, #"{"reason":"archived"}"#)
    }

    func testMethodNotAllowedHasAnAllowHeaderAndAnErrorBody() throws {
        let response = try request("plain.localhost", "/only-get", accept: "application/json", method: "DELETE")
        try assertJSONError(response, 405)
        XCTAssertEqual(response.header("Allow"), "GET, HEAD, OPTIONS")
    }

    func testForbiddenFolderDoesNotRevealWhereItIs() throws {
        let response = try request("plain.localhost", "/folder/", accept: browserAccept)
        XCTAssertEqual(response.status, 403)
        assertLeaksNothing(response)
    }

    func testHeadOfAnErrorHasItsLengthButNoBody() throws {
        let client = try TimedSocket(port: server.port, timeout: 2)
        client.send("HEAD /missing HTTP/1.1\r\nHost: plain.localhost\r\nConnection: close\r\n\r\n")
        let raw = String(decoding: client.readAll().arrivals.flatMap(\.bytes), as: UTF8.self)
        XCTAssertTrue(raw.hasPrefix("HTTP/1.1 404 "), raw)
        XCTAssertNotNil(raw.firstMatch(of: /Content-Length: [1-9][0-9]*\r\n/), raw)
        XCTAssertTrue(raw.hasSuffix("\r\n\r\n"), raw)
    }

    func testBadRequestsAnswerJSONToJSONClientsAndCloseTheConnection() throws {
        let client = try RawClient(port: server.port)
        // HTTP/1.1 without Host: the head parses, so its Accept is known.
        client.send("GET / HTTP/1.1\r\nAccept: application/json\r\n\r\n")
        try assertJSONError(try XCTUnwrap(client.readResponse()), 400)
        XCTAssertTrue(client.waitForClose())

        let browser = try RawClient(port: server.port)
        browser.send("GET / HTTP/1.1\r\nAccept: text/html\r\n\r\n")
        let html = try XCTUnwrap(browser.readResponse())
        XCTAssertEqual(html.status, 400)
        XCTAssertEqual(html.header("Content-Type"), "text/html; charset=utf-8")
    }
}

/// The reason phrases the JSON error bodies carry, as a client reads them.
private enum ErrorResponsesText {
    static func reason(_ status: Int) -> String {
        [400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 410: "Gone"][status] ?? ""
    }
}
