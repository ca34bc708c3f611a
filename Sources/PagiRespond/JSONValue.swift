import Foundation
import Mustache
import PagiConfig
import PagiCore

/// A JSON document: the request body as templates see it (`{{json.user.name}}`).
indirect enum JSONValue: Decodable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let integer = try? container.decode(Int.self) {
            self = .int(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .double(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let items = try? container.decode([JSONValue].self) {
            self = .array(items)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// The value for Mustache: scalars as Swift values, containers as looked-into wrappers,
    /// null as NSNull (which Mustache treats as missing).
    var mustacheValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .int(let integer): return integer
        case .double(let number): return number
        case .string(let text): return text
        case .array(let items): return JSONArrayView(items: items)
        case .object(let members): return JSONObjectView(members: members)
        }
    }

    /// Compact JSON text (object members sorted by key, so the output is stable).
    var jsonText: String {
        switch self {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let integer): return String(integer)
        case .double(let number): return number.isFinite ? String(number) : "null"
        case .string(let text): return TextEscaping.jsonString(text)
        case .array(let items): return "[" + items.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.sorted { $0.key < $1.key }
                .map { TextEscaping.jsonString($0.key) + ":" + $0.value.jsonText }.joined(separator: ",") + "}"
        }
    }
}

/// A JSON object in a template: `{{json.user.name}}` looks into it; `{{json.user}}` prints it as JSON.
struct JSONObjectView: MustacheParent, MustacheCustomRenderable {
    let members: [String: JSONValue]
    func child(named name: String) -> Any? { members[name]?.mustacheValue }
    var renderText: String { JSONValue.object(members).jsonText }
    var isNull: Bool { false }
}

/// A JSON array in a template: iterated by sections, indexed by `{{json.items.0}}`, printed as JSON.
struct JSONArrayView: MustacheSequence, MustacheParent, MustacheCustomRenderable {
    let items: [JSONValue]
    func makeIterator() -> LazyMapSequence<[JSONValue], Any>.Iterator { items.lazy.map(\.mustacheValue).makeIterator() }
    func child(named name: String) -> Any? {
        guard let index = Int(name), items.indices.contains(index) else { return nil }
        return items[index].mustacheValue
    }
    var renderText: String { JSONValue.array(items).jsonText }
    var isNull: Bool { false }
}
