import PagiConfig

/// A JSON value, as parsed from a request body (`JSONValue.parse`) or built for a response.
/// Objects keep their members in document order, duplicates included (lookups take the last one,
/// as JavaScript does); integers that fit `Int` stay exact.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// Objects are equal whatever the order of their members; an integer equals a number of the
    /// same exact value (`1` == `1.0`), as JSON does not tell them apart.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.integer(let x), .number(let y)), (.number(let y), .integer(let x)): return Int(exactly: y) == x
        case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return Self.members(x, equal: y)
        default: return false
        }
    }

    /// Strings, keys included, compare code unit by code unit (RFC 8259 §8.3), not by Swift's
    /// canonical equivalence: `"é"` and `"e\u0301"` are different keys to every other JSON reader.
    private static func sameKey(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Equal as lookups see them: the same keys, each with the same (last) value.
    private static func members(_ x: [(key: String, value: JSONValue)], equal y: [(key: String, value: JSONValue)]) -> Bool {
        func lastValues(_ members: [(key: String, value: JSONValue)]) -> [[UInt8]: JSONValue] {
            Dictionary(members.map { (Array($0.key.utf8), $0.value) }, uniquingKeysWith: { _, last in last })
        }
        return lastValues(x) == lastValues(y)
    }

    /// The value of the object member `key` (the last one when the key is repeated); nil when
    /// there is none or this is not an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { Self.sameKey($0.key, key) }?.value
    }

    /// An integer or number as a `Double` (integers beyond 2^53 rounded); nil for other types.
    public var numericValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// JSON Schema's name for the type of this value.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer: return "integer"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Compact JSON text, object members in their order. A number that is not finite (which JSON
    /// cannot write) becomes `null`.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .integer(let value): out += String(value)
        case .number(let value): out += value.isFinite ? String(value) : "null"
        case .string(let string): out += TextEscaping.jsonString(string)
        case .array(let items): Self.writeArray(items, to: &out) { $0.write(to: &$1) }
        case .object(let members): Self.writeObject(members, to: &out) { $0.write(to: &$1) }
        }
    }

    /// `[a,b,…]`, each element written by `writeElement`: shared with JSON templates, whose
    /// elements are rendered per request.
    @inlinable
    public static func writeArray<Element>(_ elements: [Element], to out: inout String,
                                           _ writeElement: (Element, inout String) -> Void) {
        out += "["
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            writeElement(element, &out)
        }
        out += "]"
    }

    /// `{"key":value,…}` in the members' order, each value written by `writeValue`.
    @inlinable
    public static func writeObject<Value>(_ members: [(key: String, value: Value)], to out: inout String,
                                          _ writeValue: (Value, inout String) -> Void) {
        out += "{"
        for (index, member) in members.enumerated() {
            if index > 0 { out += "," }
            out += TextEscaping.jsonString(member.key) + ":"
            writeValue(member.value, &out)
        }
        out += "}"
    }
}
