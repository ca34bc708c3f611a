import XCTest
@testable import PagiCore

/// `JSONValue.parse`, the hand-written RFC 8259 parser (Sources/PagiCore/JSON), the value it builds,
/// and the request body cache on top of it (`Request.jsonBody()`, `Request.bodyJSON`).
final class JSONParserTests: XCTestCase {
    // MARK: - Helpers

    private func parse(_ text: String) -> JSONValue? {
        JSONValue.parse(Array(text.utf8))
    }

    private func parse(bytes: [UInt8]) -> JSONValue? {
        JSONValue.parse(bytes)
    }

    /// The value of `text`, which must parse.
    private func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try XCTUnwrap(parse(text), "refused: \(text.debugDescription)", file: file, line: line)
    }

    /// `text` parses to exactly `expected`: `==` (which takes `1` for `1.0` and ignores member
    /// order) and also the same compact text, byte for byte, which tells `.integer(1)` ("1") from
    /// `.number(1)` ("1.0"), `-0.0` from `0.0`, member order, and strings that are only canonically
    /// equivalent (Swift's `String ==` would take "é" for "e\u{301}").
    private func assertParses(_ text: String, as expected: JSONValue, file: StaticString = #filePath, line: UInt = #line) {
        guard let value = parse(text) else {
            XCTFail("refused: \(text.debugDescription)", file: file, line: line)
            return
        }
        XCTAssertEqual(value, expected, text.debugDescription, file: file, line: line)
        XCTAssertEqual(Array(value.text.utf8), Array(expected.text.utf8), "\(value.text) is not \(expected.text)", file: file, line: line)
    }

    private func assertRefused(_ inputs: [String], file: StaticString = #filePath, line: UInt = #line) {
        for text in inputs {
            XCTAssertNil(parse(text), "accepted: \(text.debugDescription)", file: file, line: line)
        }
    }

    private func assertRefused(bytes inputs: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) {
        for bytes in inputs {
            XCTAssertNil(parse(bytes: bytes), "accepted: \(bytes)", file: file, line: line)
        }
    }

    /// The member names of an object, in order; nil for anything else.
    private func keys(_ value: JSONValue?) -> [String]? {
        guard case .object(let members)? = value else { return nil }
        return members.map { $0.key }
    }

    /// `depth` levels of `open` … `close` around `innermost`.
    private func nested(_ depth: Int, _ open: String, _ close: String, around innermost: String) -> String {
        String(repeating: open, count: depth) + innermost + String(repeating: close, count: depth)
    }

    /// Levels of arrays and objects, following the first item or member of each.
    private func depth(of value: JSONValue) -> Int {
        switch value {
        case .array(let items): return 1 + (items.first.map { depth(of: $0) } ?? 0)
        case .object(let members): return 1 + (members.first.map { depth(of: $0.value) } ?? 0)
        default: return 0
        }
    }

    // MARK: - Objects: order, duplicates, text

    func testObjectMembersKeepDocumentOrder() throws {
        XCTAssertEqual(keys(parse(#"{"b":1,"a":2}"#)), ["b", "a"])
        let value = try json(#"{"z":0,"m":{"y":1,"x":2},"a":3}"#)
        XCTAssertEqual(keys(value), ["z", "m", "a"])
        XCTAssertEqual(keys(value["m"]), ["y", "x"])
        XCTAssertEqual(value.text, #"{"z":0,"m":{"y":1,"x":2},"a":3}"#)
    }

    func testDuplicateKeysAreKeptAndLookupTakesTheLast() throws {
        let value = try json(#"{"a":1,"b":true,"a":2}"#)
        XCTAssertEqual(keys(value), ["a", "b", "a"])
        assertParses(#"{"a":1,"b":true,"a":2}"#, as: .object([(key: "a", value: .integer(1)), (key: "b", value: .bool(true)),
                                                             (key: "a", value: .integer(2))]))
        XCTAssertEqual(value["a"], .integer(2))
        XCTAssertEqual(value["b"], .bool(true))
        XCTAssertNil(value["c"])
        XCTAssertNil(JSONValue.array([.integer(1)])["a"], "only objects have members")
        XCTAssertNil(JSONValue.string("a")["a"])
        XCTAssertEqual(value.text, #"{"a":1,"b":true,"a":2}"#, "text keeps both members, in order")
    }

    func testTextIsCompactInDocumentOrderAndRoundTrips() throws {
        let source = #"{ "b" : 1 , "a" : [ true , false , null , -2 , 1.5 , "q\"\\\/\n\u00e9\u0001😀" ] , "b" : { } , "e" : [ ] }"#
        let value = try json(source)
        let compact = #"{"b":1,"a":[true,false,null,-2,1.5,"q\"\\/\né\u0001😀"],"b":{},"e":[]}"#
        XCTAssertEqual(Array(value.text.utf8), Array(compact.utf8), value.text)
        XCTAssertEqual(parse(value.text), value)
        XCTAssertEqual(parse(value.text)?.text, compact, "a second round keeps the order too")

        let built = JSONValue.object([
            (key: "k", value: .array([.integer(Int.min), .number(0.25), .string("\u{0}\t"), .null])),
            (key: "\"", value: .object([])),
        ])
        XCTAssertEqual(built.text, #"{"k":[-9223372036854775808,0.25,"\u0000\t",null],"\"":{}}"#)
        XCTAssertEqual(parse(built.text), built)
    }

    func testNumbersJSONCannotWriteBecomeNull() {
        XCTAssertEqual(JSONValue.number(.infinity).text, "null")
        XCTAssertEqual(JSONValue.number(-.infinity).text, "null")
        XCTAssertEqual(JSONValue.number(.nan).text, "null")
        XCTAssertEqual(JSONValue.array([.number(.nan), .integer(1)]).text, "[null,1]")
    }

    // MARK: - Numbers

    func testIntegersThatFitIntStayExact() {
        assertParses("9007199254740993", as: .integer(9007199254740993))
        XCTAssertNotEqual(parse("9007199254740993"), .number(9007199254740992), "2^53 + 1 is not rounded through Double")
        assertParses(String(Int.max), as: .integer(Int.max))
        assertParses(String(Int.min), as: .integer(Int.min))
        assertParses("0", as: .integer(0))
        assertParses("-1", as: .integer(-1))
        assertParses("1234567890", as: .integer(1234567890))
        // What the parser does with `-0`: a plain integer, so the sign of zero is dropped.
        assertParses("-0", as: .integer(0))
        XCTAssertEqual(parse("-0")?.text, "0")
    }

    func testOtherNumbersAreTheNearestDouble() {
        assertParses("9223372036854775808", as: .number(9223372036854775808.0))
        assertParses("-9223372036854775809", as: .number(-9223372036854775809.0))
        assertParses("123456789012345678901234567890", as: .number(123456789012345678901234567890.0))
        assertParses("1.5e3", as: .number(1500))
        assertParses("1E2", as: .number(100))
        assertParses("-0.5", as: .number(-0.5))
        assertParses("2E+1", as: .number(20))
        assertParses("1e-2", as: .number(0.01))
        assertParses("-1.25E-1", as: .number(-0.125))
        assertParses("1.0", as: .number(1))
        assertParses("0.1", as: .number(0.1))
        assertParses("0e0", as: .number(0))
        assertParses("-0.0", as: .number(-0.0))
        guard case .number(let zero)? = parse("-0.0") else { return XCTFail("-0.0 is no number") }
        XCTAssertEqual(zero.sign, .minus)
    }

    func testMalformedNumbersAreRefused() {
        assertRefused([
            "01", "-01", "00", "1.", "-1.", ".5", "-.5", "+1", "-", "- 1", "--1", "1e", "1e+", "1E-", "1.e3", "1.5.2",
            "0x10", "1_000", "NaN", "-NaN", "Infinity", "-Infinity", "inf", "[01]", "[1.]", "[-]", #"{"a":.5}"#,
        ])
    }

    // MARK: - Structure and document

    func testMalformedStructureIsRefused() {
        assertRefused([
            "[1,]", #"{"a":1,}"#, #"{"a"}"#, "{a:1}", "{'a':1}", "'a'", "[1 2]", #"{"a" 1}"#, #"{"a":}"#, #"{"a":1 "b":2}"#,
            "[", "]", "{", "}", "[1", #"{"a":1"#, "[,1]", "{,}", "[1,,2]", "{1:2}", "{null:1}",
            "tru", "nul", "True", "nulll", "falsey", "// c\n1", "/* c */ 1", "1 // c", "#1", "undefined",
        ])
    }

    func testTheDocumentIsOneValueWithOnlyJSONWhitespaceAround() {
        assertRefused(["", " ", "\n", "1 2", "1,2", "[] []", "{}x", #""a""b""#, "null null"])
        // Whitespace is SP, HT, LF and CR only.
        assertRefused(["\u{0C}1", "1\u{0C}", "[1,\u{0C}2]", "\u{0B}1", "\u{A0}1", "\u{2028}1", "1\u{0}"])
        assertParses(" \t\n\r1 \t\n\r", as: .integer(1))
        assertParses("\r\n[ 1 ,\t2 ]\n", as: .array([.integer(1), .integer(2)]))
        assertParses(" {\n\t\"a\" :\r\n[ ] , \"b\":{ } }\t", as: .object([(key: "a", value: .array([])), (key: "b", value: .object([]))]))
        // A byte order mark is not whitespace either (RFC 8259 §8.1: parsers MAY ignore it; this one does not).
        XCTAssertNil(parse(bytes: [0xEF, 0xBB, 0xBF] + Array("1".utf8)))
    }

    func testTopLevelScalarsAreDocuments() {
        assertParses("true", as: .bool(true))
        assertParses("false", as: .bool(false))
        assertParses("null", as: .null)
        assertParses(#""x""#, as: .string("x"))
        assertParses("\"\"", as: .string(""))
        assertParses("0", as: .integer(0))
    }

    func testNestingIsLimitedAtExactlyTheMaximumDepth() throws {
        let limit = JSONParser.maximumDepth
        XCTAssertEqual(limit, 512)

        let deepestArrays = nested(limit, "[", "]", around: "")
        let arrays = try json(deepestArrays)
        XCTAssertEqual(depth(of: arrays), limit)
        XCTAssertEqual(arrays.text, deepestArrays)
        XCTAssertNil(parse(nested(limit + 1, "[", "]", around: "")))

        let objects = try json(nested(limit, #"{"a":"#, "}", around: "null"))
        XCTAssertEqual(depth(of: objects), limit)
        XCTAssertNil(parse(nested(limit + 1, #"{"a":"#, "}", around: "null")))
        XCTAssertNotNil(parse(nested(limit / 2, #"[{"a":"#, "}]", around: "1")), "arrays and objects count alike")
        XCTAssertNil(parse(nested(limit / 2, #"[{"a":"#, "}]", around: "[1]")))

        // Depth is nesting, not a count of containers: siblings each reach the limit.
        let siblings = "[" + Array(repeating: nested(limit - 1, "[", "]", around: ""), count: 3).joined(separator: ",") + "]"
        XCTAssertNotNil(parse(siblings))

        // Hostile input stops at the limit instead of exhausting the stack.
        XCTAssertNil(parse(String(repeating: "[", count: 100_000)))
        XCTAssertNil(parse(nested(100_000, "[", "]", around: "")))
    }

    // MARK: - Strings

    func testEscapes() {
        assertParses(#""\"\\\/\b\f\n\r\t\u00e9""#, as: .string("\"\\/\u{08}\u{0C}\n\r\t\u{E9}"))
        assertParses(#""\u00C9\u00c9""#, as: .string("\u{C9}\u{C9}"))
        assertParses(#""\u0000""#, as: .string("\u{0}"))
        assertParses(#""\ud83d\ude00""#, as: .string("😀"))
        assertParses(#""\uD83D\uDE00""#, as: .string("😀"))
        assertParses(#""a\u0301""#, as: .string("a\u{301}"))
        assertParses(#""x\u00e9y\nz""#, as: .string("x\u{E9}y\nz"))
        XCTAssertEqual(parse(#"{"\u0061":1}"#)?["a"], .integer(1), "keys are unescaped too")
    }

    func testRawUTF8IsTakenAsIs() {
        assertParses("\"é😀\u{7F}\"", as: .string("é😀\u{7F}"))
        XCTAssertEqual(parse(bytes: [0x22, 0xC3, 0xA9, 0x22]), .string("\u{E9}"))
        XCTAssertEqual(parse(bytes: [0x22, 0xC3, 0xA9, 0x5C, 0x6E, 0xC3, 0xA9, 0x22]), .string("\u{E9}\n\u{E9}"))
    }

    func testMalformedStringsAreRefused() {
        assertRefused([
            // Raw control characters, without and after an escape.
            "\"a\u{01}b\"", "\"a\tb\"", "\"a\nb\"", "\"\u{1F}\"", "\"\u{0}\"", "\"\\n\u{01}\"", "{\"a\u{01}\":1}",
            // Surrogates that do not pair up.
            #""\ud800""#, #""\udc00""#, #""\udbff""#, #""\ude00\ud83d""#, #""\ud83d\ud83d""#, #""\ud83d\u0041""#,
            #""\ud83dx""#, #""\ud83d\n""#, #""\ud83d"#,
            // Unknown or short escapes, unterminated strings.
            #""\x""#, #""\'""#, #""\u12""#, #""\u12G4""#, #""\U00e9""#, #""\ ""#, #""\"#, #""abc"#, "\"", #""\n"#,
        ])
        assertRefused(bytes: [
            [0x22, 0xFF, 0x22],                   // not UTF-8 at all
            [0x22, 0x5C, 0x6E, 0xFF, 0x22],       // … after an escape
            [0x22, 0xC3, 0x22],                   // a truncated sequence
            [0x22, 0xC3, 0x5C, 0x6E, 0xA9, 0x22], // … cut by an escape
            [0x22, 0xC0, 0xAF, 0x22],             // overlong "/"
            [0x22, 0xED, 0xA0, 0x80, 0x22],       // a surrogate encoded in UTF-8
            Array(#"{""#.utf8) + [0xFF] + Array(#"":1}"#.utf8),
        ])
    }

    // MARK: - Equality, type names, numeric values

    func testEquality() throws {
        let equal: [(String, String)] = [
            ("1", "1.0"), ("1", "1e0"), ("100", "1E2"), ("0", "-0"), ("0", "-0.0"),
            ("9007199254740992", "9007199254740992.0"), ("-9223372036854775808", "-9223372036854775808.0"),
            (#"{"a":1,"b":[1,2]}"#, #"{"b":[1.0,2],"a":1}"#), ("[1,[2,{\"x\":3}]]", "[1.0,[2,{\"x\":3e0}]]"),
            ("[]", "[ ]"), ("{}", "{ }"), (#""\u00e9""#, "\"é\""), ("null", "null"), ("true", "true"),
        ]
        for (a, b) in equal {
            XCTAssertEqual(try json(a), try json(b), "\(a) == \(b)")
            XCTAssertEqual(try json(b), try json(a), "\(b) == \(a)")
        }
        let unequal: [(String, String)] = [
            ("1", "1.5"), ("1", #""1""#), ("true", "1"), ("false", "0"), ("null", "0"), ("null", "false"), ("[]", "{}"),
            ("\"\"", "null"), ("true", "false"), (#""a""#, #""b""#),
            ("[1,2]", "[2,1]"), ("[1]", "[1,1]"), ("[1]", "[[1]]"),
            (#"{"a":1}"#, #"{"a":1,"b":2}"#), (#"{"a":1}"#, #"{"a":2}"#), (#"{"a":1}"#, #"{"b":1}"#), (#"{"a":1}"#, #"{"a":"1"}"#),
            ("9223372036854775807", "9223372036854775807.0"), ("9007199254740993", "9007199254740993.0"),
            ("9223372036854775807", "9223372036854775808"),
        ]
        for (a, b) in unequal {
            XCTAssertNotEqual(try json(a), try json(b), "\(a) != \(b)")
            XCTAssertNotEqual(try json(b), try json(a), "\(b) != \(a)")
        }
    }

    func testStringsAndKeysCompareCodeUnitByCodeUnit() throws {
        // "é" precomposed and "e" + combining acute are the same to Swift's `==`, not to JSON (RFC 8259 §8.3).
        XCTAssertNotEqual(try json(#""\u00e9""#), try json(#""e\u0301""#))
        let object = try json(#"{"\u00e9":1}"#)
        XCTAssertEqual(object["\u{E9}"], .integer(1))
        XCTAssertNil(object["e\u{301}"])
    }

    func testObjectsWithDuplicateKeysAreEqualAsLookupsSeeThem() throws {
        XCTAssertNotEqual(try json(#"{"a":1,"a":2}"#), try json(#"{"a":2,"a":1}"#), "the last `a` differs")
        XCTAssertEqual(try json(#"{"a":1,"a":2}"#), try json(#"{"a":2}"#))
    }

    func testNumbersBeyondDoubleAreRefused() {
        assertRefused(["1e400", "-1e400", "[1e309]"])
        assertParses("1e308", as: .number(1e308))
    }

    func testTypeNames() throws {
        let expected: [(text: String, typeName: String)] = [
            ("null", "null"), ("true", "boolean"), ("false", "boolean"), ("0", "integer"), ("-0", "integer"),
            (String(Int.min), "integer"), ("0.0", "number"), ("1e2", "number"), ("9223372036854775808", "number"),
            ("\"\"", "string"), ("[]", "array"), ("{}", "object"),
        ]
        for (text, typeName) in expected {
            XCTAssertEqual(try json(text).typeName, typeName, text)
        }
    }

    func testNumericValue() throws {
        XCTAssertEqual(try json("3").numericValue, 3)
        XCTAssertEqual(try json("-1.5").numericValue, -1.5)
        XCTAssertEqual(try json("1e2").numericValue, 100)
        XCTAssertEqual(try json("9007199254740993").numericValue, 9007199254740992, "beyond 2^53, rounded")
        XCTAssertEqual(try json(String(Int.max)).numericValue, 9223372036854775808.0)
        for text in [#""1""#, "true", "null", "[1]", #"{"a":1}"#] {
            XCTAssertNil(try json(text).numericValue, text)
        }
    }

    // MARK: - Input collections

    func testAnyCollectionOfBytesParsesAlike() throws {
        let text = #"{"k":[1,"é"],"a":null}"#
        let expected = try json(text)
        XCTAssertEqual(JSONValue.parse(text.utf8)?.text, text)
        XCTAssertEqual(JSONValue.parse(Array(("xx" + text).utf8).dropFirst(2))?.text, text, "a slice that does not start at 0")
        XCTAssertEqual(JSONValue.parse(text.utf8.lazy.map { $0 })?.text, text, "a collection without contiguous storage")
        XCTAssertEqual(JSONValue.parse(text.utf8.lazy.map { $0 }), expected)
        XCTAssertNil(JSONValue.parse(Array("[1,]".utf8).dropFirst(0)))
        XCTAssertNil(JSONValue.parse("[1,]".utf8.lazy.map { $0 }))
        XCTAssertNil(JSONValue.parse(Array("[1] ".utf8).dropLast(2)), "the slice ends before the bracket")
    }

    // MARK: - The request body, parsed once

    func testBodyJSONParsesWithoutKeeping() {
        let request = RoutingFixture.request("POST", "/", body: #"{"a":[1,2]}"#)
        XCTAssertEqual(request.bodyJSON, .object([(key: "a", value: .array([.integer(1), .integer(2)]))]))
        XCTAssertNil(request.context.parsedJSONBody, "a reader that cannot change the request keeps nothing")
        XCTAssertNil(RoutingFixture.request("POST", "/", body: "not json").bodyJSON)
        XCTAssertNil(RoutingFixture.request("POST", "/", body: "").bodyJSON)
    }

    func testJSONBodyKeepsItsParseInTheContext() {
        let expected = JSONValue.object([(key: "a", value: .array([.integer(1), .integer(2)]))])
        var request = RoutingFixture.request("POST", "/", body: #"{"a":[1,2]}"#)
        XCTAssertNil(request.context.parsedJSONBody)
        XCTAssertEqual(request.jsonBody(), expected)
        XCTAssertEqual(request.context.parsedJSONBody, .json(expected))

        // Not parsed again: a later body is not even looked at (whoever replaces it must clear the cache).
        request.body = Array("[2]".utf8)
        XCTAssertEqual(request.jsonBody(), expected)
        XCTAssertEqual(request.bodyJSON, expected)
        request.context.parsedJSONBody = nil
        XCTAssertEqual(request.jsonBody(), .array([.integer(2)]))
    }

    func testJSONBodyKeepsARefusalToo() {
        for body in ["not json", "", "[1,]"] {
            var request = RoutingFixture.request("POST", "/", body: body)
            XCTAssertNil(request.jsonBody(), body)
            XCTAssertEqual(request.context.parsedJSONBody, .notJSON, body)
            request.body = Array("1".utf8)
            XCTAssertNil(request.jsonBody(), "the refusal is kept: \(body)")
            XCTAssertNil(request.bodyJSON, body)
        }
    }

    func testBodyJSONReadsWhatWasKept() {
        var request = RoutingFixture.request("POST", "/", body: "[1]")
        request.context.parsedJSONBody = .json(.string("kept"))
        XCTAssertEqual(request.bodyJSON, .string("kept"))
        request.context.parsedJSONBody = .notJSON
        XCTAssertNil(request.bodyJSON)
    }
}
