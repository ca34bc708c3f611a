@testable import PagiCore
import XCTest

final class StaticPrimitivesTests: XCTestCase {
    // MARK: HTTPDate

    func testFormatsIMFFixdate() {
        XCTAssertEqual(HTTPDate.format(epochSeconds: 0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: -1), "Wed, 31 Dec 1969 23:59:59 GMT")
    }

    func testParsesTheThreeFormats() {
        XCTAssertEqual(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT"), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sun Nov  6 08:49:37 1994"), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sun Nov 16 08:49:37 1994"), 784_111_777 + 10 * 86_400)
    }

    func testRejectsMalformedDates() {
        let bad = ["", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                   "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                   "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun Nov 6 08:49:37 1994", "1994-11-06T08:49:37Z"]
        for text in bad { XCTAssertNil(HTTPDate.parse(text), text) }
    }

    func testRoundTrips() {
        var seconds = -86_400 * 365
        while seconds < 5_000_000_000 {
            XCTAssertEqual(HTTPDate.parse(HTTPDate.format(epochSeconds: seconds)), seconds)
            seconds += 7_777_777
        }
        XCTAssertEqual(HTTPDate.parse(HTTPDate.format(epochSeconds: 951_868_799)), 951_868_799, "29 Feb 2000 end")
    }

    func testRFC850TwoDigitYears() {
        XCTAssertEqual(HTTPDate.parse("Thursday, 01-Jan-70 00:00:00 GMT", currentYear: 2019), 0)
        let in2075 = HTTPDate.parse("Tuesday, 01-Jan-75 00:00:00 GMT", currentYear: 2026)
        XCTAssertEqual(in2075.map { HTTPDate.format(epochSeconds: $0) }, "Tue, 01 Jan 2075 00:00:00 GMT")
        let in1977 = HTTPDate.parse("Saturday, 01-Jan-77 00:00:00 GMT", currentYear: 2026)
        XCTAssertEqual(in1977.map { HTTPDate.format(epochSeconds: $0) }, "Sat, 01 Jan 1977 00:00:00 GMT",
                       "more than 50 years ahead means the past")
    }

    // MARK: MIME types

    func testContentTypes() {
        let expected = [
            "a.html": "text/html; charset=utf-8", "a.css": "text/css; charset=utf-8",
            "a.js": "application/javascript; charset=utf-8", "a.mjs": "application/javascript; charset=utf-8",
            "a.json": "application/json; charset=utf-8", "a.js.map": "application/json; charset=utf-8",
            "a.txt": "text/plain; charset=utf-8", "a.md": "text/markdown; charset=utf-8",
            "a.xml": "application/xml; charset=utf-8", "a.svg": "image/svg+xml; charset=utf-8",
            "a.csv": "text/csv; charset=utf-8", "a.yaml": "application/yaml; charset=utf-8",
            "a.webmanifest": "application/manifest+json; charset=utf-8",
            "a.png": "image/png", "a.JPG": "image/jpeg", "a.gif": "image/gif", "a.webp": "image/webp",
            "a.avif": "image/avif", "a.ico": "image/x-icon", "a.woff": "font/woff", "a.woff2": "font/woff2",
            "a.ttf": "font/ttf", "a.otf": "font/otf", "a.pdf": "application/pdf", "a.zip": "application/zip",
            "a.gz": "application/gzip", "a.wasm": "application/wasm", "a.mp4": "video/mp4", "a.webm": "video/webm",
            "a.mp3": "audio/mpeg", "a.ogg": "audio/ogg", "a.wav": "audio/wav",
            "dir.d/README": "application/octet-stream", "a.unknownext": "application/octet-stream",
            ".bashrc": "application/octet-stream", "/x/y/page.htm": "text/html; charset=utf-8",
        ]
        for (path, type) in expected {
            XCTAssertEqual(MIMETypes.contentType(forPath: path), type, path)
        }
    }

    // MARK: Ranges and negotiation helpers

    func testByteRangesOutcomes() {
        XCTAssertEqual(ByteRanges.evaluate("bytes=0-0", length: 0), .unsatisfiable)
        XCTAssertEqual(ByteRanges.evaluate("bytes=-5", length: 0), .unsatisfiable)
        XCTAssertEqual(ByteRanges.evaluate("bytes=4-7,0-3", length: 10), .satisfiable([4...7, 0...3]))
        XCTAssertEqual(ByteRanges.evaluate("bytes=0-3,,  8-", length: 10), .satisfiable([0...3, 8...9]))
        XCTAssertEqual(ByteRanges.evaluate("bytes=0-3,2-5", length: 10), .none)
        XCTAssertEqual(ByteRanges.evaluate("bytes=-3,7-7", length: 10), .none, "suffix overlaps")
        XCTAssertEqual(ByteRanges.evaluate("bytes=x", length: 10), .none)
    }

    func testQualityValues() {
        XCTAssertEqual(ContentNegotiation.qualityValue("1"), 1000)
        XCTAssertEqual(ContentNegotiation.qualityValue("1.000"), 1000)
        XCTAssertEqual(ContentNegotiation.qualityValue("0.5"), 500)
        XCTAssertEqual(ContentNegotiation.qualityValue("0.125"), 125)
        XCTAssertEqual(ContentNegotiation.qualityValue("0"), 0)
        XCTAssertNil(ContentNegotiation.qualityValue("1.5"))
        XCTAssertNil(ContentNegotiation.qualityValue("0.1234"))
        XCTAssertNil(ContentNegotiation.qualityValue("2"))
        XCTAssertEqual(ContentNegotiation.preferences("gzip;q=0.5, BR , zstd;Q=0; x=y"),
                       [.init(token: "gzip", weight: 500), .init(token: "br", weight: 1000),
                        .init(token: "zstd", weight: 0)])
    }

    func testEntityTagLists() {
        let list = EntityTagList(" W/\"a\" ,\"b,c\", \"d\"")
        XCTAssertEqual(list.tags.map(\.opaque), ["\"a\"", "\"b,c\"", "\"d\""])
        XCTAssertEqual(list.tags.map(\.isWeak), [true, false, false])
        XCTAssertTrue(list.matches("\"a\"", weakComparison: true))
        XCTAssertFalse(list.matches("\"a\"", weakComparison: false))
        XCTAssertTrue(list.matches("\"b,c\"", weakComparison: false))
        XCTAssertTrue(EntityTagList("*").isWildcard)
    }
}
