import Foundation
import PagiTestSupport
import XCTest

/// The example site (the repository's config.yaml and sites/) over HTTP/2 with the usual clients:
/// nghttp fetches the home page and every asset it links on one connection, curl the API and the
/// docs host (docs/http2.md). Cleartext by prior knowledge: the example listens without TLS.
final class ExampleSiteHTTP2Tests: XCTestCase {
    private var served: ServedProcess?

    override func tearDownWithError() throws {
        served?.kill()
    }

    func testNghttpAndCurlGetTheExampleSiteOverHTTP2() throws {
        try XCTSkipUnless(ExternalTool.isInstalled("curl") && ExternalTool.isInstalled("nghttp"),
                          "curl and nghttp (nghttp2-client) are needed: scripts/test installs them")
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let port = try freePort()
        served = try ServedProcess(arguments: ["config.yaml", "--listen", "127.0.0.1:\(port)"], directory: repository)
        try served?.waitForLog("listening on http://127.0.0.1:\(port)")
        // -a: the page's stylesheets, scripts and images too, as streams of the same connection.
        let page = try ExternalTool.run("nghttp", ["-ans", "http://localhost:\(port)/"])
        XCTAssertEqual(page.status, 0, page.errors)
        let statuses = page.output.split(separator: "\n").filter { $0.contains(" /") }
        XCTAssertGreaterThan(statuses.count, 2, "the page and its assets: \(page.output)")
        let home = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                                 "http://localhost:\(port)/"])
        XCTAssertEqual(home.output, "2 200")
        let docs = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                                 "--resolve", "docs.localhost:\(port):127.0.0.1", "http://docs.localhost:\(port)/"])
        XCTAssertEqual(docs.output, "2 200")
        let missing = try ExternalTool.run("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                                    "http://localhost:\(port)/no-such-page"])
        XCTAssertEqual(missing.output, "2 404")
    }
}
