@testable import PagiOpenAPI
import XCTest

/// The hand-written XML reader behind XML request bodies (XMLBody.swift): what it reads as a
/// tree, and what it refuses as not well-formed or unsafe.
final class XMLReaderTests: XCTestCase {
    private func parse(_ text: String) -> XMLElementTree? { XMLElementTree.parse(Array(text.utf8)) }

    func testElementsAttributesTextAndReferences() throws {
        let root = try XCTUnwrap(parse("""
            \u{FEFF}<?xml version="1.0" encoding="UTF-8"?>
            <!-- a pet -->
            <ns:pet id='7' note="a &amp; b &#x263A; &#65;">
              <name>Rex &lt;the&gt; &quot;dog&quot;</name><tag/><tag kind="x"></tag>
              <?ignored instruction?><!-- comment --><bio><![CDATA[<b>bold</b> & raw]]></bio>
              <ünïcode>é</ünïcode>
            </ns:pet>
            """))
        XCTAssertEqual(root.name, "ns:pet")
        XCTAssertEqual(root.attributes, ["id": "7", "note": "a & b ☺ A"])
        XCTAssertEqual(root.children.map(\.name), ["name", "tag", "tag", "bio", "ünïcode"])
        XCTAssertEqual(root.children(named: "name").first?.text, #"Rex <the> "dog""#)
        XCTAssertEqual(root.children(named: "tag").last?.attributes, ["kind": "x"])
        XCTAssertEqual(root.children(named: "bio").first?.text, "<b>bold</b> & raw")
        XCTAssertEqual(root.children(named: "ünïcode").first?.text, "é")
    }

    func testWhatIsNotWellFormedIsRefused() {
        for text in [
            "", "text only", "<a>", "<a></b>", "<a><b></a></b>", "<a/><b/>", "<a/>trailing", "<a x=1/>", "<a x='1' x='2'/>",
            "<a>&unknown;</a>", "<a>& loose</a>", "<a>&#0;</a>", "<a>&#xD800;</a>", "<1a/>", "<a><!-- open</a>",
            "<a><![CDATA[open</a>", "<a x='<'/>", "<a\u{0}/>", "</a>",
        ] {
            XCTAssertNil(parse(text), text)
        }
        XCTAssertNil(XMLElementTree.parse([0x3C, 0x61, 0x3E, 0xFF, 0x3C, 0x2F, 0x61, 0x3E]), "invalid UTF-8")
    }

    /// No DTD is read, so no entity can be declared: neither external entities (XXE) nor an entity
    /// bomb reach the server.
    func testADocumentTypeIsRefused() {
        XCTAssertNil(parse("""
            <?xml version="1.0"?><!DOCTYPE pet [<!ENTITY x SYSTEM "file:///etc/passwd">]><pet>&x;</pet>
            """))
        XCTAssertNil(parse(#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#))
    }

    func testNestingIsBounded() {
        let depth = XMLReader.maximumDepth
        XCTAssertNotNil(parse(String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth)))
        XCTAssertNil(parse(String(repeating: "<a>", count: depth + 1) + String(repeating: "</a>", count: depth + 1)))
    }
}
