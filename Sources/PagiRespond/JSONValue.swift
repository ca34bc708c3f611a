import Foundation
import Mustache
import PagiCore

extension JSONValue {
    /// The value for Mustache (`{{json.user.name}}`): scalars as Swift values, containers as
    /// looked-into wrappers, null as NSNull (which Mustache treats as missing).
    var mustacheValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .integer(let integer): return integer
        case .number(let number): return number
        case .string(let text): return text
        case .array(let items): return JSONArrayView(items: items)
        case .object: return JSONObjectView(object: self)
        }
    }
}

/// A JSON object in a template: `{{json.user.name}}` looks into it; `{{json.user}}` prints it as JSON.
struct JSONObjectView: MustacheParent, MustacheCustomRenderable {
    let object: JSONValue
    func child(named name: String) -> Any? { object[name]?.mustacheValue }
    var renderText: String { object.text }
    var isNull: Bool { false }
}

/// A map of strings (`path`, `query`, `headers`) in a template: `{{query.page}}` looks into it,
/// `{{query}}` prints it as compact JSON with its keys sorted (docs/configuration.md §9.2), and
/// swift-mustache's map transforms (`{{#sorted(query)}}`, `{{count(query)}}`) still apply.
struct StringMapView: MustacheParent, MustacheCustomRenderable, MustacheTransformable {
    let map: [String: String]
    func child(named name: String) -> Any? { map[name] }
    var renderText: String { JSONValue.object(map.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).text }
    var isNull: Bool { false }
    func transform(_ name: String) -> Any? { map.transform(name) }
}

/// A JSON array in a template: iterated by sections, indexed by `{{json.items.0}}`, printed as JSON.
struct JSONArrayView: MustacheSequence, MustacheParent, MustacheCustomRenderable {
    let items: [JSONValue]
    func makeIterator() -> LazyMapSequence<[JSONValue], Any>.Iterator { items.lazy.map(\.mustacheValue).makeIterator() }
    func child(named name: String) -> Any? {
        guard let index = Int(name), items.indices.contains(index) else { return nil }
        return items[index].mustacheValue
    }
    var renderText: String { JSONValue.array(items).text }
    var isNull: Bool { false }
}
