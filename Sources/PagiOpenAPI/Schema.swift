import Foundation
import PagiCore

/// The index of a schema in its `SchemaGraph`.
typealias SchemaID = Int

/// One JSON Schema of the document — OpenAPI 3.0's dialect or 3.1's JSON Schema 2020-12 — with
/// the keywords that checking and examples use read once (docs/configuration.md, `openapi`, lists
/// them). Subschemas are indices into the graph, so a recursive `$ref` is an index that points back.
struct Schema: Sendable {
    /// JSON Schema type names in document order; nil allows every type. 3.0's `nullable: true`
    /// and 3.1's `type: [..., "null"]` both add "null".
    var types: [String]?
    /// 3.0 `nullable: true`: `null` is valid whatever `enum` says (as schemathesis reads it).
    var nullable = false
    var enumValues: [JSONValue]?
    var constValue: JSONValue?
    var format: String?
    var minimum: JSONValue?
    var exclusiveMinimum: JSONValue?
    var maximum: JSONValue?
    var exclusiveMaximum: JSONValue?
    var multipleOf: JSONValue?
    var minLength = 0
    var maxLength: Int?
    var pattern: Pattern?
    var items: SchemaID?
    var prefixItems: [SchemaID] = []
    var minItems = 0
    var maxItems: Int?
    var uniqueItems = false
    var properties: [(name: String, schema: SchemaID)] = []
    var required: [String] = []
    /// `additionalProperties` as a schema; `false` is `forbidsAdditionalProperties`.
    var additionalProperties: SchemaID?
    var forbidsAdditionalProperties = false
    var patternProperties: [(pattern: Pattern, schema: SchemaID)] = []
    var minProperties = 0
    var maxProperties: Int?
    var allOf: [SchemaID] = []
    var anyOf: [SchemaID] = []
    var oneOf: [SchemaID] = []
    var not: SchemaID?
    var discriminator: Discriminator?
    var readOnly = false
    var writeOnly = false
    /// `example`, else the first of `examples`, else `default`: used for examples when valid.
    var example: JSONValue?
    /// The XML Object: the element (or attribute) name, whether it is an attribute, whether an
    /// array is wrapped in an element of its own.
    var xmlName: String?
    var xmlAttribute = false
    var xmlWrapped = false

    struct Discriminator: Sendable {
        let property: String
        /// Explicit `mapping` entries, then every `oneOf`/`anyOf` member reached by `$ref` under its
        /// component name (the implicit mapping of OpenAPI §4.8.25).
        let mapping: [(value: String, schema: SchemaID)]
    }

    func property(_ name: String) -> SchemaID? {
        properties.first { $0.name == name }?.schema
    }

    /// Whether the type list lets `typeName` through (`integer` is a `number` too).
    func allows(type typeName: String) -> Bool {
        guard let types else { return true }
        return types.contains(typeName) || (typeName == "integer" && types.contains("number"))
    }
}

/// A regular expression of the document, compiled once. `NSRegularExpression` is immutable and
/// may be shared between threads (Foundation documents it as thread-safe).
struct Pattern: @unchecked Sendable {
    let source: String
    private let regex: NSRegularExpression

    /// nil when ICU cannot compile it: the keyword is then not checked.
    init?(_ source: String) {
        guard let regex = try? NSRegularExpression(pattern: source) else { return nil }
        (self.source, self.regex) = (source, regex)
    }

    /// JSON Schema patterns are not anchored: a match anywhere counts.
    func matches(_ string: String) -> Bool {
        regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) != nil
    }
}

/// Every schema of one document. Built once when the document loads; immutable afterwards.
struct SchemaGraph: Sendable {
    fileprivate(set) var nodes: [Schema] = []

    subscript(id: SchemaID) -> Schema { nodes[id] }
}

/// Reads schema objects of the document into a `SchemaGraph`: one node per schema object, and a
/// `$ref` to a schema already read is the same index again (so shared components are read once,
/// and a recursive reference ends in a loop of indices rather than an endless copy).
struct SchemaCompiler {
    let document: OpenAPIDocument
    private(set) var graph = SchemaGraph()
    private var byReference: [String: SchemaID] = [:]

    init(document: OpenAPIDocument) {
        self.document = document
    }

    mutating func compile(_ json: JSONValue, at path: [String]) throws(SpecError) -> SchemaID {
        if case .string(let reference)? = json["$ref"] {
            if let known = byReference[reference] { return known }
            let (target, targetPath) = try document.resolve(reference, from: path)
            let id = reserve()
            byReference[reference] = id
            graph.nodes[id] = try read(target, at: targetPath)
            return id
        }
        let schema = try read(json, at: path)
        let id = reserve()
        graph.nodes[id] = schema
        return id
    }

    private mutating func reserve() -> SchemaID {
        graph.nodes.append(Schema())
        return graph.nodes.count - 1
    }

    private mutating func read(_ json: JSONValue, at path: [String]) throws(SpecError) -> Schema {
        var schema = Schema()
        switch json {
        case .bool(true): return schema
        case .bool(false):
            schema.types = []
            return schema
        case .object: break
        default: throw SpecError("a schema must be an object", at: path)
        }
        switch json["type"] {
        case .string(let name)?: schema.types = [name]
        case .array(let names)?: schema.types = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
        default: break
        }
        if json["nullable"] == .bool(true) {
            schema.nullable = true
            if let types = schema.types, !types.contains("null") { schema.types = types + ["null"] }
        }
        if case .array(let values)? = json["enum"] { schema.enumValues = values }
        schema.constValue = json["const"]
        if case .string(let format)? = json["format"] { schema.format = format }
        schema.minimum = number(json["minimum"])
        schema.maximum = number(json["maximum"])
        // 3.0 (JSON Schema draft 5): a boolean that makes `minimum`/`maximum` exclusive; 3.1: a bound of its own.
        switch json["exclusiveMinimum"] {
        case .bool(true)?: (schema.exclusiveMinimum, schema.minimum) = (schema.minimum, nil)
        case let bound?: schema.exclusiveMinimum = number(bound)
        case nil: break
        }
        switch json["exclusiveMaximum"] {
        case .bool(true)?: (schema.exclusiveMaximum, schema.maximum) = (schema.maximum, nil)
        case let bound?: schema.exclusiveMaximum = number(bound)
        case nil: break
        }
        schema.multipleOf = number(json["multipleOf"])
        schema.minLength = count(json["minLength"]) ?? 0
        schema.maxLength = count(json["maxLength"])
        if case .string(let source)? = json["pattern"] { schema.pattern = Pattern(source) }
        if let items = json["items"] {
            if case .array(let tuple) = items {  // draft 4–7 tuple form
                schema.prefixItems = try tuple.enumerated().map { (index, item) throws(SpecError) in try compile(item, at: path + ["items", "\(index)"]) }
            } else {
                schema.items = try compile(items, at: path + ["items"])
            }
        }
        if case .array(let tuple)? = json["prefixItems"] {
            schema.prefixItems = try tuple.enumerated().map { (index, item) throws(SpecError) in try compile(item, at: path + ["prefixItems", "\(index)"]) }
        }
        schema.minItems = count(json["minItems"]) ?? 0
        schema.maxItems = count(json["maxItems"])
        schema.uniqueItems = json["uniqueItems"] == .bool(true)
        if case .object(let members)? = json["properties"] {
            for member in members {
                schema.properties.append((member.key, try compile(member.value, at: path + ["properties", member.key])))
            }
        }
        if case .array(let names)? = json["required"] {
            schema.required = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
        }
        switch json["additionalProperties"] {
        case .bool(false)?: schema.forbidsAdditionalProperties = true
        case .object(let members)? where !members.isEmpty:
            schema.additionalProperties = try compile(json["additionalProperties"] ?? .bool(true), at: path + ["additionalProperties"])
        default: break
        }
        if case .object(let members)? = json["patternProperties"] {
            for member in members {
                guard let pattern = Pattern(member.key) else { continue }
                schema.patternProperties.append((pattern, try compile(member.value, at: path + ["patternProperties", member.key])))
            }
        }
        schema.minProperties = count(json["minProperties"]) ?? 0
        schema.maxProperties = count(json["maxProperties"])
        schema.allOf = try list(json, "allOf", at: path)
        schema.anyOf = try list(json, "anyOf", at: path)
        schema.oneOf = try list(json, "oneOf", at: path)
        if let excluded = json["not"] { schema.not = try compile(excluded, at: path + ["not"]) }
        if case .string(let property)? = json["discriminator"]?["propertyName"] {
            schema.discriminator = try discriminator(property, json, at: path)
        }
        schema.readOnly = json["readOnly"] == .bool(true)
        schema.writeOnly = json["writeOnly"] == .bool(true)
        if case .string(let name)? = json["xml"]?["name"] { schema.xmlName = name }
        schema.xmlAttribute = json["xml"]?["attribute"] == .bool(true)
        schema.xmlWrapped = json["xml"]?["wrapped"] == .bool(true)
        if let example = json["example"] {
            schema.example = example
        } else if case .array(let examples)? = json["examples"], let first = examples.first {
            schema.example = first
        } else {
            schema.example = json["default"]
        }
        return schema
    }

    private mutating func list(_ json: JSONValue, _ keyword: String, at path: [String]) throws(SpecError) -> [SchemaID] {
        guard case .array(let members)? = json[keyword] else { return [] }
        return try members.enumerated().map { (index, member) throws(SpecError) in try compile(member, at: path + [keyword, "\(index)"]) }
    }

    private mutating func discriminator(_ property: String, _ json: JSONValue, at path: [String]) throws(SpecError) -> Schema.Discriminator {
        var mapping: [(value: String, schema: SchemaID)] = []
        if case .object(let entries)? = json["discriminator"]?["mapping"] {
            for entry in entries {
                guard case .string(let target) = entry.value else { continue }
                // A bare name stands for `#/components/schemas/<name>`.
                let reference = target.contains("/") ? target : "#/components/schemas/" + target
                mapping.append((entry.key, try compile(.object([("$ref", .string(reference))]), at: path + ["discriminator"])))
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            guard case .array(let members)? = json[keyword] else { continue }
            for member in members {
                guard case .string(let reference)? = member["$ref"], let name = reference.split(separator: "/").last.map(String.init),
                      !mapping.contains(where: { $0.value == name }) else { continue }
                mapping.append((name, try compile(member, at: path + [keyword])))
            }
        }
        return Schema.Discriminator(property: property, mapping: mapping)
    }

    private func number(_ value: JSONValue?) -> JSONValue? {
        switch value {
        case .integer?, .number?: value
        default: nil
        }
    }

    private func count(_ value: JSONValue?) -> Int? {
        switch value {
        case .integer(let count)?: max(0, count)
        case .number(let count)?: Int(exactly: count.rounded(.down)).map { max(0, $0) }
        default: nil
        }
    }
}
