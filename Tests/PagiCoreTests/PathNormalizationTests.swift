@testable import PagiCore
import XCTest

/// `PercentDecoding.normalizePath`: the common path kept as it is; an encoded `/` or `\` kept
/// encoded (with `%` as `%25` in every segment) and flagged, so segments stay the client's.
final class PathNormalizationTests: XCTestCase {
    private func normalized(_ raw: String) -> PercentDecoding.NormalizedPath? {
        try? PercentDecoding.normalizePath(raw).get()
    }

    func testPlainAndDecodedPaths() {
        XCTAssertEqual(normalized("/a/b/"), .init(path: "/a/b/", hasEncodedSeparators: false))
        XCTAssertEqual(normalized("/a/%7Euser/./x/../b%25c"), .init(path: "/a/~user/b%c", hasEncodedSeparators: false))
        XCTAssertEqual(normalized("/%CC%81x/y"), .init(path: "/\u{301}x/y", hasEncodedSeparators: false))
    }

    func testEncodedSeparatorsStayEncodedAndAreFlagged() {
        XCTAssertEqual(normalized("/repos/o/branches/feature%2Fx/protection"),
                       .init(path: "/repos/o/branches/feature%2Fx/protection", hasEncodedSeparators: true))
        XCTAssertEqual(normalized("/a%25b/c%5Cd/e%25f"), .init(path: "/a%25b/c%5Cd/e%25f", hasEncodedSeparators: true),
                       "every segment's % is escaped once one segment keeps an escape, before it and after")
        XCTAssertEqual(normalized("/a%2F..%2Fb/../c"), .init(path: "/c", hasEncodedSeparators: true),
                       "an encoded ../ inside a segment is no dot segment; a real one still removes it")
        for raw in ["/a%2Fb", "/x/%5C", "/%2F%2F"] {
            let path = try? XCTUnwrap(normalized(raw)).path
            XCTAssertEqual(path?.split(separator: "/").count, raw.split(separator: "/").count, "no new separators: \(raw)")
            XCTAssertEqual(path.flatMap { PercentDecoding.decode($0) }, PercentDecoding.decode(raw))
        }
    }

    func testNULAndClimbingAboveTheRootAreStillRefused() {
        XCTAssertEqual(PercentDecoding.normalizePath("/a%00b").failure, .malformed)
        XCTAssertEqual(PercentDecoding.normalizePath("/a%2Fb%00").failure, .malformed)
        XCTAssertEqual(PercentDecoding.normalizePath("/../etc/passwd").failure, .aboveRoot)
    }
}

private extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
