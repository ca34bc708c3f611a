import Foundation
import OpenAPIKit
import PagiConfig
import PagiCore

/// A JSON value with object members in order, so a synthesised example lists properties in the
/// order the schema declares them. Request bodies and document examples are converted to it.
indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { member in y.contains { $0.key == member.key && $0.value == member.value } }
        default:
            guard let x = a.numericValue, let y = b.numericValue else { return false }
            return x == y
        }
    }

    var numericValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// Parses JSON text; nil when it is not JSON.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return nil }
        return JSONValue(foundation: object)
    }

    /// From what JSONSerialization (or a YAML decoder, through AnyCodable) produced. Dictionaries
    /// have no order there, so their keys are sorted for a stable output.
    init(foundation value: Any) {
        switch value {
        case is NSNull: self = .null
        // Native Swift values (from YAML) first, by exact type: `as Int` would also accept a Bool.
        case let flag as Bool where type(of: value) == Bool.self: self = .bool(flag)
        case let integer as Int where type(of: value) == Int.self: self = .integer(integer)
        case let double as Double where type(of: value) == Double.self: self = .number(double)
        case let number as NSNumber:
            let double = number.doubleValue
            if number.isJSONBoolean {
                self = .bool(number.boolValue)
            } else {
                self = double.rounded() == double && abs(double) < 1e15 ? .integer(Int(double)) : .number(double)
            }
        case let string as String: self = .string(string)
        case let items as [Any]: self = .array(items.map(JSONValue.init(foundation:)))
        case let members as [String: Any]:
            self = .object(members.keys.sorted().compactMap { key in members[key].map { (key: key, value: JSONValue(foundation: $0)) } })
        case let codable as AnyCodable: self = JSONValue(foundation: codable.value)
        case let codables as [AnyCodable]: self = .array(codables.map { JSONValue(foundation: $0.value) })
        case let members as [String: AnyCodable]:
            self = .object(members.keys.sorted().compactMap { key in members[key].map { (key: key, value: JSONValue(foundation: $0.value)) } })
        default: self = .string(String(describing: value))
        }
    }

    /// Compact JSON text.
    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let value): return String(value)
        case .number(let value): return value.isFinite ? "\(value)" : "null"
        case .string(let string): return TextEscaping.jsonString(string)
        case .array(let items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.map { TextEscaping.jsonString($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    /// JSON Schema's name for the type of this value.
    var typeName: String {
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
}
