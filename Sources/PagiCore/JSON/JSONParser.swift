extension JSONValue {
    /// Parses JSON text (RFC 8259, UTF-8); nil when it is not JSON.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        if let parsed = bytes.withContiguousStorageIfAvailable(JSONParser.parseDocument) { return parsed }
        return Array(bytes).withUnsafeBufferPointer(JSONParser.parseDocument)
    }
}

/// A strict RFC 8259 parser: no comments, trailing commas, leading zeros, NaN or other extensions;
/// strings must be valid UTF-8 without raw control characters, and `\u` escapes of surrogates must
/// pair up. Written by hand because Foundation's `JSONSerialization` loses the order of object
/// members and reads every number through `Double` (integers beyond 2^53 change), and none of the
/// packages we may use keeps both. Nesting is limited so that hostile input cannot exhaust the
/// stack: each level of arrays and objects is one level of recursion here.
struct JSONParser {
    static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// One value with nothing but whitespace around it.
    static func parseDocument(_ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        var parser = JSONParser(bytes)
        guard let value = parser.parseValue() else { return nil }
        parser.skipWhitespace()
        return parser.position == bytes.count ? value : nil
    }

    private mutating func parseValue() -> JSONValue? {
        skipWhitespace()
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "{"): return parseObject()
        case UInt8(ascii: "["): return parseArray()
        case UInt8(ascii: "\""): return parseString().map(JSONValue.string)
        case UInt8(ascii: "t"): return parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return parseNumber()
        default: return nil
        }
    }

    private mutating func parseObject() -> JSONValue? {
        guard enterContainer() else { return nil }
        defer { depth -= 1 }
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return .object(members) }
        repeat {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\""), let key = parseString() else { return nil }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")), let value = parseValue() else { return nil }
            members.append((key: key, value: value))
            skipWhitespace()
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}")) ? .object(members) : nil
    }

    private mutating func parseArray() -> JSONValue? {
        guard enterContainer() else { return nil }
        defer { depth -= 1 }
        var items: [JSONValue] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return .array(items) }
        repeat {
            guard let item = parseValue() else { return nil }
            items.append(item)
            skipWhitespace()
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]")) ? .array(items) : nil
    }

    /// Steps over the opening bracket of an array or object, one level deeper.
    private mutating func enterContainer() -> Bool {
        guard depth < Self.maximumDepth else { return false }
        depth += 1
        position += 1
        return true
    }

    private mutating func parseLiteral(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let length = word.utf8CodeUnitCount
        guard bytes.count - position >= length else { return nil }
        for offset in 0..<length where bytes[position + offset] != word.utf8Start[offset] { return nil }
        position += length
        return value
    }

    /// A string at its opening quote. Most strings have no escapes: they are validated and
    /// converted in place, without an intermediate copy.
    private mutating func parseString() -> String? {
        position += 1
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { return parseEscapedString(from: start) }
            if byte < 0x20 { return nil }
            position += 1
        }
        return nil
    }

    /// The rest of a string whose first escape is at `position`. Escapes decode to whole
    /// characters, so the bytes around them are valid UTF-8 exactly when each run is.
    private mutating func parseEscapedString(from start: Int) -> String? {
        var utf8 = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { return nil }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = parseUnicodeEscape() else { return nil }
                    utf8.append(contentsOf: scalar.utf8)
                default: return nil
                }
            case ..<0x20:
                return nil
            default:
                utf8.append(byte)
            }
        }
        return nil
    }

    /// The scalar of `\uXXXX` (after its `\u`): a high surrogate must be followed by an escaped
    /// low one, together one scalar; a surrogate alone is refused rather than replaced.
    private mutating func parseUnicodeEscape() -> Unicode.Scalar? {
        guard let unit = parseHexQuad() else { return nil }
        switch unit {
        case 0xD800...0xDBFF:
            guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")), let low = parseHexQuad(), (0xDC00...0xDFFF).contains(low)
            else { return nil }
            return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
        case 0xDC00...0xDFFF:
            return nil
        default:
            return Unicode.Scalar(unit)
        }
    }

    private mutating func parseHexQuad() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. A plain integer that fits `Int` is
    /// read digit by digit, exactly; any other number is the `Double` nearest to its text.
    private mutating func parseNumber() -> JSONValue? {
        let start = position
        let negative = consume(UInt8(ascii: "-"))
        guard position < bytes.count, Self.isDigit(bytes[position]) else { return nil }
        // Accumulated as a negative number, whose range holds `Int.min` too.
        var negated = 0
        var fitsInt = true
        if !consume(UInt8(ascii: "0")) {
            while position < bytes.count, Self.isDigit(bytes[position]) {
                if fitsInt {
                    let (times10, overflowed) = negated.multipliedReportingOverflow(by: 10)
                    let (next, overflowedAgain) = times10.subtractingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
                    if overflowed || overflowedAgain { fitsInt = false } else { negated = next }
                }
                position += 1
            }
        }
        var isInteger = true
        if consume(UInt8(ascii: ".")) {
            isInteger = false
            guard skipDigits() else { return nil }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            guard skipDigits() else { return nil }
        }
        if isInteger && fitsInt {
            if negative { return .integer(negated) }
            if negated != Int.min { return .integer(-negated) }
        }
        // Refused when out of Double's range (`1e400`): it would be infinity, which JSON cannot write back.
        guard let number = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)),
              number.isFinite else { return nil }
        return .number(number)
    }

    /// Steps over one or more digits; false when there is none.
    private mutating func skipDigits() -> Bool {
        let start = position
        while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
        return position > start
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }
}
