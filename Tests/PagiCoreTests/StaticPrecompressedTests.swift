import Foundation
@testable import PagiCore
import PagiConfig
import XCTest

final class StaticPrecompressedTests: XCTestCase {
    private var site: StaticFixture!
    private let original = "body { color: red }\n"

    override func setUpWithError() throws {
        site = try StaticFixture()
        try site.write("style.css", original)
        try site.write("style.css.br", [9, 9, 9])
        try site.write("style.css.zst", [7, 7])
        try site.write("style.css.gz", [0x1F, 0x8B, 1])
        try site.write("plain.css", "p{}")
    }

    override func tearDown() {
        site = nil
    }

    private func encoding(_ acceptEncoding: String?, configure: (inout StaticConfig) -> Void = { _ in }) -> String? {
        let headers = acceptEncoding.map { ["Accept-Encoding": $0] } ?? [:]
        return site.handler(configure: configure).get("/style.css", headers).headers["Content-Encoding"]
    }

    func testRememberedAnswersAreKeptApartByAcceptEncoding() {
        // One handler with fresh answers on: each client gets the representation it asked for.
        let handler = site.handler(freshFor: .seconds(60))
        for _ in 0..<2 {
            XCTAssertEqual(handler.get("/style.css", ["Accept-Encoding": "br"]).headers["Content-Encoding"], "br")
            XCTAssertEqual(handler.get("/style.css", ["Accept-Encoding": "gzip"]).headers["Content-Encoding"], "gzip")
            let plain = handler.get("/style.css")
            XCTAssertNil(plain.headers["Content-Encoding"])
            XCTAssertEqual(plain.text, original)
        }
    }

    func testSelectionByQualityValues() {
        XCTAssertEqual(encoding("gzip, br"), "br", "ties go to the configured order")
        XCTAssertEqual(encoding("gzip, deflate"), "gzip")
        XCTAssertEqual(encoding("x-gzip"), "gzip")
        XCTAssertEqual(encoding("gzip;q=1, br;q=0.5"), "gzip")
        XCTAssertEqual(encoding("br;q=0, zstd;q=0.1"), "zstd")
        XCTAssertEqual(encoding("*"), "br")
        XCTAssertEqual(encoding("*;q=0.5, br;q=0"), "zstd")
        XCTAssertEqual(encoding("gzip;q=0.5, identity"), nil, "identity named with a higher weight")
        XCTAssertEqual(encoding("gzip;q=0"), nil)
        XCTAssertEqual(encoding("deflate"), nil)
        XCTAssertEqual(encoding(""), nil)
        XCTAssertEqual(encoding(nil), nil, "no Accept-Encoding: identity")
        XCTAssertEqual(encoding("gzip, br") { $0.precompressed = [.gzip, .br] }, "gzip", "config order")
        XCTAssertEqual(encoding("br") { $0.precompressed = [.gzip] }, nil, "only listed encodings")
        XCTAssertEqual(encoding("br") { $0.precompressed = [] }, nil)
    }

    func testVariantResponseKeepsTheOriginalTypeAndHasItsOwnETag() throws {
        let handler = site.handler()
        let br = handler.get("/style.css", ["Accept-Encoding": "br"])
        XCTAssertEqual(br.bodyBytes, [9, 9, 9])
        XCTAssertEqual(br.headers["Content-Type"], "text/css; charset=utf-8")
        XCTAssertEqual(br.headers["Vary"], "Accept-Encoding")
        let gzip = handler.get("/style.css", ["Accept-Encoding": "gzip"])
        let identity = handler.get("/style.css")
        let tags = [br, gzip, identity].compactMap { $0.headers["ETag"] }
        XCTAssertEqual(Set(tags).count, 3, "each representation has its own ETag: \(tags)")
        XCTAssertEqual(identity.text, original)
        XCTAssertNil(identity.headers["Content-Encoding"])
    }

    func testVaryOnEveryResponseForAFileWithVariants() throws {
        let handler = site.handler()
        let br = handler.get("/style.css", ["Accept-Encoding": "br"])
        let brTag = try XCTUnwrap(br.headers["ETag"])
        let responses = [
            handler.get("/style.css"),
            handler.get("/style.css", ["Accept-Encoding": "br", "If-None-Match": brTag]),
            handler.get("/style.css", ["Accept-Encoding": "br", "Range": "bytes=0-1"]),
            handler.get("/style.css", ["Range": "bytes=0-1,3-4"]),
            handler.get("/style.css", ["If-Match": "\"nope\""]),
            handler.get("/style.css", ["Range": "bytes=500-"]),
            handler.get("/style.css", method: "HEAD"),
        ]
        XCTAssertEqual(responses.map(\.status), [200, 304, 206, 206, 412, 416, 200])
        for response in responses {
            XCTAssertEqual(response.headers["Vary"], "Accept-Encoding", "status \(response.status)")
        }
        XCTAssertEqual(responses[2].headers["Content-Encoding"], "br")
        XCTAssertEqual(responses[2].bodyBytes, [9, 9])
        XCTAssertEqual(handler.get("/style.css", ["If-None-Match": brTag]).status, 200,
                       "the br tag does not validate the identity representation")
        XCTAssertNil(handler.get("/plain.css", ["Accept-Encoding": "br"]).headers["Vary"])
    }

    func testVariantsFollowTheSymlinkPolicy() throws {
        try site.write("site/app.js", "app()")
        try site.write("elsewhere.js.br", [1, 2, 3])
        try site.symlink("site/app.js.br", to: site.path("elsewhere.js.br"))
        let response = site.handler(root: "site").get("/app.js", ["Accept-Encoding": "br"])
        XCTAssertEqual(response.text, "app()", "a variant linking outside the root is not served")
        XCTAssertEqual(response.headers["Vary"], "Accept-Encoding")
    }
}
