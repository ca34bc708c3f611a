@testable import PagiCore
import XCTest

/// Field lines are what the engine copies to the wire; prepared ones must stay exactly what a
/// fresh serialisation of the same fields would give.
final class FieldLinesTests: XCTestCase {
    func testFramingFieldsAreLeftOutAndServerIsNoted() {
        let lines = FieldLines(["Content-Type": "text/plain", "content-length": "3", "Transfer-Encoding": "chunked",
                                "Connection": "close", "DATE": "x", "ETag": "\"a\""])
        XCTAssertEqual(String(decoding: lines.bytes, as: UTF8.self), "Content-Type: text/plain\r\nETag: \"a\"\r\n")
        XCTAssertFalse(lines.hasServer)
        XCTAssertTrue(FieldLines(["server": "mine"]).hasServer)
        let upgrade = FieldLines(["Connection": "Upgrade", "Upgrade": "websocket"], keepingConnection: true)
        XCTAssertEqual(String(decoding: upgrade.bytes, as: UTF8.self), "Connection: Upgrade\r\nUpgrade: websocket\r\n")
    }

    func testFieldsAddedToPreparedHeadersKeepThemPreparedAndExact() throws {
        var headers: HeaderFields = ["Content-Type": "text/plain", "ETag": "\"a\""]
        headers.prepareFieldLines()
        headers.add("Content-Range", "bytes 0-4/13")
        headers.add("Content-Length", "5")
        headers.add("Server", "stub")
        let prepared = try XCTUnwrap(headers.fieldLines, "adding keeps the prepared lines")
        let fresh = FieldLines(headers)
        XCTAssertEqual(prepared.bytes, fresh.bytes)
        XCTAssertEqual(prepared.hasServer, fresh.hasServer)
        XCTAssertTrue(prepared.hasServer)
        XCTAssertEqual(String(decoding: prepared.bytes, as: UTF8.self),
                       "Content-Type: text/plain\r\nETag: \"a\"\r\nContent-Range: bytes 0-4/13\r\nServer: stub\r\n")

        headers.set("ETag", "\"b\"")
        XCTAssertNil(headers.fieldLines, "replacing a field drops them")
    }
}
