import NIOCore
@testable import PagiRealtime
import XCTest

/// The Redis reply decoder against replies a broken or hostile Redis could send.
final class RESPDecoderTests: XCTestCase {
    private func parse(_ text: String) throws -> RESPValue? {
        var buffer = ByteBuffer(string: text)
        return try RESPDecoder.parse(&buffer, depth: 0)
    }

    func testRepliesToOurCommandsDecode() throws {
        XCTAssertEqual(try parse(":3\r\n"), .integer(3))
        XCTAssertEqual(try parse("$5\r\nhello\r\n"), .bulkString(Array("hello".utf8)))
        XCTAssertNil(try parse("$5\r\nhel"), "incomplete: wait for more bytes")
    }

    func testAnAbsurdBulkLengthIsAProtocolErrorNotACrashOrAWait() {
        XCTAssertThrowsError(try parse("$9223372036854775807\r\nx\r\n"))
        XCTAssertThrowsError(try parse("$\(1 << 40)\r\n"))
    }
}
