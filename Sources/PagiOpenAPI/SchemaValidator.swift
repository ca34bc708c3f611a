import Foundation
import PagiConfig
import PagiCore

/// One way a request breaks the document: where (`path`, `query`, `header`, `body`), which
/// parameter or JSON pointer, what the schema expects and what came instead.
struct Violation: Sendable, Equatable {
    var location: String
    var name: String
    var expected: String
    var got: String
}

/// Checks a JSON value against a schema of the graph, with JSON Schema's semantics: each keyword
/// applies to values of its own type, and a schema without `type` takes any. The keywords and
/// formats checked are listed in docs/configuration.md (`openapi`). Written here because none of
/// the packages we may use validates JSON Schema.
struct SchemaValidator {
    let graph: SchemaGraph
    let location: String
    /// Requests: a required `readOnly` property (an id the server assigns) may be absent.
    /// Responses (checking examples): a required `writeOnly` one may be.
    var isRequest = true

    func validate(_ value: JSONValue, against id: SchemaID, at name: String) -> [Violation] {
        let schema = graph[id]
        if value == .null, schema.nullable { return [] }
        if let types = schema.types, !types.contains(where: { Self.value(value, hasType: $0) }) {
            return [violation(name, expected: types.isEmpty ? "no value (the schema is false)" : types.joined(separator: " or "), got: value)]
        }
        if let constValue = schema.constValue, constValue != value {
            return [violation(name, expected: "the constant \(constValue.text)", got: value)]
        }
        if let choices = schema.enumValues, !choices.isEmpty, !choices.contains(value) {
            return [violation(name, expected: "one of " + choices.map(\.text).joined(separator: ", "), got: value)]
        }
        var found: [Violation] = []
        switch value {
        case .integer, .number: found += numberViolations(value, schema, name)
        case .string(let string): found += stringViolations(string, schema, name)
        case .array(let items): found += arrayViolations(items, schema, name)
        case .object(let members): found += objectViolations(members, schema, name)
        case .null, .bool: break
        }
        for part in schema.allOf { found += validate(value, against: part, at: name) }
        if !schema.anyOf.isEmpty, !schema.anyOf.contains(where: { validate(value, against: $0, at: name).isEmpty }) {
            found.append(violation(name, expected: "a value matching at least one of \(schema.anyOf.count) schemas (anyOf)", got: value))
        }
        if let discriminator = schema.discriminator, !schema.oneOf.isEmpty || !schema.anyOf.isEmpty {
            found += discriminated(value, discriminator, name)
        } else if !schema.oneOf.isEmpty {
            let matching = schema.oneOf.filter { validate(value, against: $0, at: name).isEmpty }.count
            if matching != 1 {
                found.append(violation(name, expected: "a value matching exactly one of \(schema.oneOf.count) schemas (oneOf, \(matching) match)", got: value))
            }
        }
        if let excluded = schema.not, validate(value, against: excluded, at: name).isEmpty {
            found.append(violation(name, expected: "a value not matching the 'not' schema", got: value))
        }
        return found
    }

    /// JSON Schema's type test: a number without a fractional part (`1.0`) is an integer too.
    static func value(_ value: JSONValue, hasType type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): true
        case ("integer", .integer), ("number", .integer), ("number", .number): true
        case ("integer", .number(let number)): number.isFinite && number.rounded() == number
        default: false
        }
    }

    /// The discriminator's value names the one schema to check (OpenAPI §4.8.25).
    private func discriminated(_ value: JSONValue, _ discriminator: Schema.Discriminator, _ name: String) -> [Violation] {
        guard case .object = value else { return [] }
        guard case .string(let tag)? = value[discriminator.property] else {
            return [Violation(location: location, name: "\(name)/\(discriminator.property)",
                              expected: "the discriminator property", got: "missing")]
        }
        guard let target = discriminator.mapping.first(where: { $0.value == tag })?.schema else {
            let names = discriminator.mapping.map { TextEscaping.jsonString($0.value) }.joined(separator: ", ")
            return [violation("\(name)/\(discriminator.property)", expected: "one of " + names, got: .string(tag))]
        }
        return validate(value, against: target, at: name)
    }

    private func numberViolations(_ value: JSONValue, _ schema: Schema, _ name: String) -> [Violation] {
        if let minimum = schema.minimum, Self.compare(value, minimum) < 0 {
            return [violation(name, expected: ">= \(minimum.text)", got: value)]
        }
        if let minimum = schema.exclusiveMinimum, Self.compare(value, minimum) <= 0 {
            return [violation(name, expected: "> \(minimum.text)", got: value)]
        }
        if let maximum = schema.maximum, Self.compare(value, maximum) > 0 {
            return [violation(name, expected: "<= \(maximum.text)", got: value)]
        }
        if let maximum = schema.exclusiveMaximum, Self.compare(value, maximum) >= 0 {
            return [violation(name, expected: "< \(maximum.text)", got: value)]
        }
        if let divisor = schema.multipleOf, !Self.isMultiple(value, of: divisor) {
            return [violation(name, expected: "a multiple of \(divisor.text)", got: value)]
        }
        if let format = schema.format, let range = Self.integerFormats[format], !Self.fits(value, range) {
            return [violation(name, expected: "an integer in format '\(format)' (\(range.lowerBound)...\(range.upperBound))", got: value)]
        }
        return []
    }

    /// `int32` and `int64` (OpenAPI's data type formats).
    private static let integerFormats: [String: ClosedRange<Int>] = ["int32": Int(Int32.min)...Int(Int32.max), "int64": Int.min...Int.max]

    private static func fits(_ value: JSONValue, _ range: ClosedRange<Int>) -> Bool {
        switch value {
        case .integer(let integer): range.contains(integer)
        // A whole number the parser (or a parameter's text) could not hold in an Int is beyond
        // int64 even when its Double rounds to ±2^63: `-9223372036854775809` is -2^63 as a Double.
        case .number(let number): number > Double(range.lowerBound) && number < Double(range.upperBound)
        default: true
        }
    }

    /// -1, 0 or 1; exact for two integers, and for an integer against a whole `Double` that fits `Int`.
    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int {
        switch (a, b) {
        case (.integer(let x), .integer(let y)): return x < y ? -1 : x == y ? 0 : 1
        case (.integer(let x), .number(let y)):
            if let whole = Int(exactly: y) { return x < whole ? -1 : x == whole ? 0 : 1 }
            return Double(x) < y ? -1 : 1
        case (.number(let x), .integer(let y)):
            return -compare(.integer(y), .number(x))
        default:
            let (x, y) = (a.numericValue ?? 0, b.numericValue ?? 0)
            return x < y ? -1 : x == y ? 0 : 1
        }
    }

    private static func isMultiple(_ value: JSONValue, of divisor: JSONValue) -> Bool {
        if case .integer(let x) = value, case .integer(let d) = divisor, d != 0 { return x % d == 0 }
        guard let x = value.numericValue, let d = divisor.numericValue, d > 0 else { return true }
        let quotient = x / d
        return quotient.isFinite && abs(quotient - quotient.rounded()) <= 1e-9 * max(1, abs(quotient))
    }

    private func stringViolations(_ string: String, _ schema: Schema, _ name: String) -> [Violation] {
        // JSON Schema counts code points, not grapheme clusters.
        let length = string.unicodeScalars.count
        if length < schema.minLength { return [violation(name, expected: "at least \(schema.minLength) characters", got: .string(string))] }
        if let maximum = schema.maxLength, length > maximum {
            return [violation(name, expected: "at most \(maximum) characters", got: .string(string))]
        }
        if let pattern = schema.pattern, !pattern.matches(string) {
            return [violation(name, expected: "a string matching /\(pattern.source)/", got: .string(string))]
        }
        if let format = schema.format, let check = Formats.checks[format], !check(string) {
            return [violation(name, expected: "a string in format '\(format)'", got: .string(string))]
        }
        return []
    }

    private func arrayViolations(_ items: [JSONValue], _ schema: Schema, _ name: String) -> [Violation] {
        var found: [Violation] = []
        if items.count < schema.minItems { found.append(violation(name, expected: "at least \(schema.minItems) items", got: .array(items))) }
        if let maximum = schema.maxItems, items.count > maximum {
            found.append(violation(name, expected: "at most \(maximum) items", got: .array(items)))
        }
        if schema.uniqueItems, let duplicate = items.indices.first(where: { index in items[..<index].contains(items[index]) }) {
            found.append(violation("\(name)/\(duplicate)", expected: "unique items", got: items[duplicate]))
        }
        for (index, item) in items.enumerated() {
            let itemSchema = index < schema.prefixItems.count ? schema.prefixItems[index] : schema.items
            if let itemSchema { found += validate(item, against: itemSchema, at: "\(name)/\(index)") }
        }
        return found
    }

    private func objectViolations(_ members: [(key: String, value: JSONValue)], _ schema: Schema, _ name: String) -> [Violation] {
        var found: [Violation] = []
        if members.count < schema.minProperties {
            found.append(violation(name, expected: "at least \(schema.minProperties) properties", got: .object(members)))
        }
        if let maximum = schema.maxProperties, members.count > maximum {
            found.append(violation(name, expected: "at most \(maximum) properties", got: .object(members)))
        }
        for required in schema.required where !members.contains(where: { $0.key == required }) {
            let property = schema.property(required).map { graph[$0] }
            if isRequest ? property?.readOnly == true : property?.writeOnly == true { continue }
            found.append(Violation(location: location, name: "\(name)/\(required)", expected: "required property", got: "missing"))
        }
        for member in members {
            let memberName = "\(name)/\(member.key)"
            var matched = false
            if let property = schema.property(member.key) {
                found += validate(member.value, against: property, at: memberName)
                matched = true
            }
            for (pattern, patternSchema) in schema.patternProperties where pattern.matches(member.key) {
                found += validate(member.value, against: patternSchema, at: memberName)
                matched = true
            }
            guard !matched else { continue }
            if schema.forbidsAdditionalProperties {
                found.append(Violation(location: location, name: memberName, expected: "no such property", got: describe(member.value)))
            } else if let additional = schema.additionalProperties {
                found += validate(member.value, against: additional, at: memberName)
            }
        }
        return found
    }

    private func violation(_ name: String, expected: String, got value: JSONValue) -> Violation {
        Violation(location: location, name: name, expected: expected, got: describe(value))
    }

    /// The offending value as JSON, cut short: enough to recognise it, never a whole payload.
    private func describe(_ value: JSONValue) -> String {
        let text: String = switch value {
        case .array(let items): "an array of \(items.count) items"
        case .object: "an object"
        default: "\(value.typeName) \(value.text)"
        }
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }
}
