import Foundation
import PagiConfig
@testable import PagiCore
import XCTest

final class TextEscapingTests: XCTestCase {
    /// Every string comes back as a JSON literal that a JSON parser reads as the same string, with
    /// only the characters JSON requires escaped (RFC 8259 §7).
    func testJSONStringsEscapeExactlyWhatJSONRequires() throws {
        XCTAssertEqual(TextEscaping.jsonString("User 42"), #""User 42""#)
        XCTAssertEqual(TextEscaping.jsonString(""), #""""#)
        XCTAssertEqual(TextEscaping.jsonString("say \"hi\" \\ bye"), #""say \"hi\" \\ bye""#)
        XCTAssertEqual(TextEscaping.jsonString("a\nb\rc\td"), #""a\nb\rc\td""#)
        XCTAssertEqual(TextEscaping.jsonString("\u{01}\u{1F}\u{7F}"), "\"\\u0001\\u001f\u{7F}\"")
        XCTAssertEqual(TextEscaping.jsonString("Adá </script> 😀"), "\"Adá </script> 😀\"")

        let samples = ["plain", "q\"uote", "back\\slash", "ctl\u{00}\u{08}\u{0B}\u{0C}", "mixed é\n😀\"\\", "\u{2028}"]
        for sample in samples {
            let literal = TextEscaping.jsonString(sample)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
            XCTAssertEqual(decoded, [sample], literal)
        }
    }
}
