import Foundation
@testable import PagiCore
import XCTest

final class StaticConditionalRangeTests: XCTestCase {
    private var site: StaticFixture!
    private var handler: StaticHandler!
    private let modified = 784_111_777
    private let content = Array("0123456789abcdefghij".utf8)
    private var etag = ""

    override func setUpWithError() throws {
        site = try StaticFixture()
        try site.write("f.txt", content, modified: modified)
        handler = site.handler { $0.cacheControl = "no-cache" }
        etag = try XCTUnwrap(handler.get("/f.txt").headers["ETag"])
    }

    override func tearDown() {
        site = nil
    }

    private func status(_ headers: [String: String], method: String = "GET") -> Int {
        handler.get("/f.txt", headers, method: method).status
    }

    private func date(_ offset: Int) -> String { HTTPDate.format(epochSeconds: modified + offset) }

    // MARK: Conditionals

    func testIfNoneMatch() {
        XCTAssertEqual(status(["If-None-Match": etag]), 304)
        XCTAssertEqual(status(["If-None-Match": "W/" + etag]), 304, "weak comparison")
        XCTAssertEqual(status(["If-None-Match": "*"]), 304)
        XCTAssertEqual(status(["If-None-Match": "\"a\", \"b,c\" ,\(etag)"]), 304, "lists, commas inside tags")
        XCTAssertEqual(status(["If-None-Match": "\"other\""]), 200)
        XCTAssertEqual(status(["If-None-Match": etag], method: "HEAD"), 304)
    }

    func testNotModifiedCarriesValidatorsOnly() {
        let response = handler.get("/f.txt", ["If-None-Match": etag])
        XCTAssertEqual(response.headers["ETag"], etag)
        XCTAssertEqual(response.headers["Last-Modified"], date(0))
        XCTAssertEqual(response.headers["Cache-Control"], "no-cache")
        XCTAssertNil(response.headers["Content-Type"])
        XCTAssertEqual(response.body.length, 0)
    }

    func testIfModifiedSince() {
        XCTAssertEqual(status(["If-Modified-Since": date(0)]), 304)
        XCTAssertEqual(status(["If-Modified-Since": date(60)]), 304)
        XCTAssertEqual(status(["If-Modified-Since": date(-1)]), 200)
        XCTAssertEqual(status(["If-Modified-Since": "yesterday"]), 200, "invalid dates are ignored")
        XCTAssertEqual(status(["If-Modified-Since": "Sunday, 06-Nov-94 08:49:37 GMT"]), 304, "RFC 850")
        XCTAssertEqual(status(["If-Modified-Since": "Sun Nov  6 08:49:37 1994"]), 304, "asctime")
        XCTAssertEqual(status(["If-None-Match": "\"other\"", "If-Modified-Since": date(0)]), 200,
                       "If-Modified-Since is ignored when If-None-Match is present")
    }

    func testIfMatch() {
        XCTAssertEqual(status(["If-Match": etag]), 200)
        XCTAssertEqual(status(["If-Match": "*"]), 200)
        XCTAssertEqual(status(["If-Match": "\"x\", " + etag]), 200)
        XCTAssertEqual(status(["If-Match": "\"other\""]), 412)
        XCTAssertEqual(status(["If-Match": "W/" + etag]), 412, "strong comparison")
        XCTAssertEqual(status(["If-Match": etag, "If-Unmodified-Since": date(-100)]), 200,
                       "If-Unmodified-Since is ignored when If-Match is present")
    }

    func testIfUnmodifiedSince() {
        XCTAssertEqual(status(["If-Unmodified-Since": date(-1)]), 412)
        XCTAssertEqual(status(["If-Unmodified-Since": date(0)]), 200)
        XCTAssertEqual(status(["If-Unmodified-Since": "garbage"]), 200)
    }

    func testPreconditionFailureWinsOverNotModified() {
        XCTAssertEqual(status(["If-Match": "\"other\"", "If-None-Match": etag]), 412)
    }

    // MARK: Ranges

    private func ranged(_ range: String, _ extra: [String: String] = [:]) -> Response {
        var headers = extra
        headers["Range"] = range
        return handler.get("/f.txt", headers)
    }

    func testSingleRanges() {
        let cases: [(String, ClosedRange<Int>)] = [
            ("bytes=0-4", 0...4), ("bytes=5-", 5...19), ("bytes=-3", 17...19), ("bytes=-100", 0...19),
            ("bytes=15-1000", 15...19), ("BYTES = 2-2", 2...2), ("bytes=99999999999999999999-, 1-1", 1...1),
        ]
        for (header, range) in cases {
            let response = ranged(header)
            XCTAssertEqual(response.status, 206, header)
            XCTAssertEqual(response.headers["Content-Range"], "bytes \(range.lowerBound)-\(range.upperBound)/20", header)
            XCTAssertEqual(response.headers["Content-Type"], "text/plain; charset=utf-8")
            XCTAssertEqual(response.headers["ETag"], etag)
            XCTAssertEqual(response.bodyBytes, Array(content[range]), header)
        }
    }

    func testUnsatisfiableRanges() {
        for header in ["bytes=20-", "bytes=100-200", "bytes=-0", "bytes=25-30, 40-"] {
            let response = ranged(header)
            XCTAssertEqual(response.status, 416, header)
            XCTAssertEqual(response.headers["Content-Range"], "bytes */20", header)
        }
    }

    func testIgnoredRangesServeTheWholeFile() {
        let ignored = ["bytes=5-2", "bytes=abc", "items=0-1", "bytes=", "bytes=1-2-3", "0-5", "bytes=--1",
                       "bytes=0-5,3-8", "bytes=0-5, 5-6", "bytes=-5, 0-15"]
        for header in ignored {
            let response = ranged(header)
            XCTAssertEqual(response.status, 200, header)
            XCTAssertEqual(response.bodyBytes, content, header)
            XCTAssertNil(response.headers["Content-Range"])
        }
        XCTAssertEqual(handler.get("/f.txt", ["Range": "bytes=0-1"], method: "HEAD").status, 200, "GET only")
    }

    func testMoreThanSixteenRangesServeTheWholeFile() {
        let seventeen = "bytes=" + (0..<17).map { "\($0)-\($0)" }.joined(separator: ",")
        XCTAssertEqual(ranged(seventeen).status, 200)
        let sixteen = "bytes=" + (0..<16).map { "\($0)-\($0)" }.joined(separator: ",")
        XCTAssertEqual(ranged(sixteen).status, 206, "adjacent ranges are served as they are")
    }

    func testMultipleRangesAreMultipartByteRanges() throws {
        let big = patternBytes(count: 300_000)
        try site.write("big.bin", big)
        let response = handler.get("/big.bin", ["Range": "bytes=0-99,1000-1999,-50"])
        XCTAssertEqual(response.status, 206)
        XCTAssertNil(response.headers["Content-Range"])
        let contentType = try XCTUnwrap(response.headers["Content-Type"])
        let prefix = "multipart/byteranges; boundary="
        XCTAssertTrue(contentType.hasPrefix(prefix), contentType)
        let boundary = String(contentType.dropFirst(prefix.count))
        guard case .multipart = response.body else { return XCTFail("expected a multipart body") }
        let declaredLength = response.body.length
        let body = response.bodyBytes
        XCTAssertEqual(body.count, declaredLength)

        var expected: [UInt8] = []
        for (index, (from, to)) in [(0, 99), (1000, 1999), (big.count - 50, big.count - 1)].enumerated() {
            if index > 0 { expected += Array("\r\n".utf8) }
            expected += Array("--\(boundary)\r\nContent-Type: application/octet-stream\r\n".utf8)
            expected += Array("Content-Range: bytes \(from)-\(to)/\(big.count)\r\n\r\n".utf8)
            expected += big[from...to]
        }
        expected += Array("\r\n--\(boundary)--\r\n".utf8)
        XCTAssertTrue(body == expected, "multipart body is byte-exact")
    }

    func testIfRange() {
        XCTAssertEqual(ranged("bytes=0-4", ["If-Range": etag]).status, 206)
        XCTAssertEqual(ranged("bytes=0-4", ["If-Range": date(0)]).status, 206)
        let stale = ranged("bytes=0-4", ["If-Range": "\"stale\""])
        XCTAssertEqual(stale.status, 200)
        XCTAssertEqual(stale.bodyBytes, content)
        XCTAssertEqual(ranged("bytes=0-4", ["If-Range": "W/" + etag]).status, 200, "weak tags never match")
        XCTAssertEqual(ranged("bytes=0-4", ["If-Range": date(1)]).status, 200, "dates must match exactly")
        XCTAssertEqual(ranged("bytes=50-", ["If-Range": "\"stale\""]).status, 200, "no 416 when If-Range fails")
    }

    func testConditionalsComeBeforeRanges() {
        XCTAssertEqual(ranged("bytes=0-4", ["If-None-Match": etag]).status, 304)
        XCTAssertEqual(ranged("bytes=0-4", ["If-Match": "\"x\""]).status, 412)
    }
}
