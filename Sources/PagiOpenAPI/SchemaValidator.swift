import Foundation
import OpenAPIKit
import PagiCore

/// One way a request breaks the document: where (`path`, `query`, `header`, `body`), which
/// parameter or JSON pointer, what the schema expects and what came instead.
struct Violation: Sendable, Equatable {
    var location: String
    var name: String
    var expected: String
    var got: String
}

/// Checks a JSON value against a schema: types, enums, bounds, lengths, patterns, common formats,
/// required and unexpected properties, items, allOf/anyOf/oneOf. Written here because none of the
/// packages we may use validates JSON Schema (OpenAPIKit models schemas, it does not check values).
struct SchemaValidator {
    let location: String

    func validate(_ value: JSONValue, against schema: DereferencedJSONSchema, at name: String) -> [Violation] {
        if case .null = value, schema.nullable { return [] }
        if let allowed = schema.allowedValues, !allowed.isEmpty {
            let choices = allowed.map { JSONValue(foundation: $0.value) }
            if !choices.contains(value) {
                return [violation(name, expected: "one of " + choices.map(\.text).joined(separator: ", "), got: value)]
            }
        }
        switch schema {
        case .null(_):
            return value == .null ? [] : [violation(name, expected: "null", got: value)]
        case .boolean:
            guard case .bool = value else { return [violation(name, expected: "boolean", got: value)] }
            return []
        case .integer(_, let context):
            // As JSON Schema says, a number without a fractional part (`1.0`) is an integer too.
            guard let whole = value.numericValue, whole.isFinite, whole.rounded() == whole else {
                return [violation(name, expected: "integer", got: value)]
            }
            return bounds(whole, minimum: context.minimum.map { (Double($0.value), $0.exclusive) },
                          maximum: context.maximum.map { (Double($0.value), $0.exclusive) }, name: name, value: value)
        case .number(_, let context):
            guard let number = value.numericValue else { return [violation(name, expected: "number", got: value)] }
            return bounds(number, minimum: context.minimum.map { ($0.value, $0.exclusive) },
                          maximum: context.maximum.map { ($0.value, $0.exclusive) }, name: name, value: value)
        case .string(_, let context):
            guard case .string(let string) = value else { return [violation(name, expected: "string", got: value)] }
            return stringViolations(string, context: context, format: schema.formatString, name: name, value: value)
        case .array(_, let context):
            guard case .array(let items) = value else { return [violation(name, expected: "array", got: value)] }
            var found: [Violation] = []
            if items.count < context.minItems { found.append(violation(name, expected: "at least \(context.minItems) items", got: value)) }
            if let maximum = context.maxItems, items.count > maximum { found.append(violation(name, expected: "at most \(maximum) items", got: value)) }
            if let itemSchema = context.items {
                for (index, item) in items.enumerated() { found += validate(item, against: itemSchema, at: "\(name)/\(index)") }
            }
            return found
        case .object(_, let context):
            guard case .object(let members) = value else { return [violation(name, expected: "object", got: value)] }
            return objectViolations(members, context: context, name: name)
        case .all(let schemas, _):
            return schemas.flatMap { validate(value, against: $0, at: name) }
        case .any(let schemas, _):
            return schemas.isEmpty || schemas.contains(where: { validate(value, against: $0, at: name).isEmpty }) ? []
                : [violation(name, expected: "a value matching at least one of \(schemas.count) schemas (anyOf)", got: value)]
        case .one(let schemas, _):
            let matching = schemas.filter { validate(value, against: $0, at: name).isEmpty }.count
            return schemas.isEmpty || matching == 1 ? []
                : [violation(name, expected: "a value matching exactly one of \(schemas.count) schemas (oneOf, \(matching) match)", got: value)]
        case .not(let excluded, _):
            return validate(value, against: excluded, at: name).isEmpty ? [violation(name, expected: "a value not matching the 'not' schema", got: value)] : []
        case .fragment:
            return []
        }
    }

    private func objectViolations(_ members: [(key: String, value: JSONValue)], context: DereferencedJSONSchema.ObjectContext,
                                  name: String) -> [Violation] {
        var found: [Violation] = []
        // Requests are validated: a required but `readOnly` property (an id the server assigns) may be absent.
        for required in context.requiredProperties
        where !members.contains(where: { $0.key == required }) && context.properties[required]?.readOnly != true {
            found.append(Violation(location: location, name: "\(name)/\(required)", expected: "required property", got: "missing"))
        }
        for member in members {
            let memberName = "\(name)/\(member.key)"
            if let property = context.properties[member.key] {
                found += validate(member.value, against: property, at: memberName)
            } else if case .a(false)? = context.additionalProperties {
                found.append(Violation(location: location, name: memberName, expected: "no such property", got: describe(member.value)))
            } else if case .b(let additional)? = context.additionalProperties {
                found += validate(member.value, against: additional, at: memberName)
            }
        }
        return found
    }

    private func bounds(_ number: Double, minimum: (value: Double, exclusive: Bool)?, maximum: (value: Double, exclusive: Bool)?,
                        name: String, value: JSONValue) -> [Violation] {
        if let minimum, minimum.exclusive ? number <= minimum.value : number < minimum.value {
            return [violation(name, expected: "\(minimum.exclusive ? ">" : ">=") \(JSONValue.number(minimum.value).compactNumber)", got: value)]
        }
        if let maximum, maximum.exclusive ? number >= maximum.value : number > maximum.value {
            return [violation(name, expected: "\(maximum.exclusive ? "<" : "<=") \(JSONValue.number(maximum.value).compactNumber)", got: value)]
        }
        return []
    }

    private func stringViolations(_ string: String, context: DereferencedJSONSchema.StringContext, format: String?,
                                  name: String, value: JSONValue) -> [Violation] {
        if string.count < context.minLength { return [violation(name, expected: "at least \(context.minLength) characters", got: value)] }
        if let maximum = context.maxLength, string.count > maximum { return [violation(name, expected: "at most \(maximum) characters", got: value)] }
        if let pattern = context.pattern, let regex = try? NSRegularExpression(pattern: pattern),
           regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) == nil {
            return [violation(name, expected: "a string matching /\(pattern)/", got: value)]
        }
        if let format, let check = Self.formatChecks[format], !check(string) {
            return [violation(name, expected: "a string in format '\(format)'", got: value)]
        }
        return []
    }

    /// Formats checked by shape (the common ones; others are accepted as the spec allows).
    private static let formatChecks: [String: @Sendable (String) -> Bool] = [
        "date": { matches($0, #"^\d{4}-\d{2}-\d{2}$"#) },
        "date-time": { matches($0, #"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#) },
        "email": { matches($0, #"^[^@\s]+@[^@\s]+\.[^@\s]+$"#) },
        "uuid": { UUID(uuidString: $0) != nil },
        "ipv4": { matches($0, #"^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$"#) },
        "uri": { URL(string: $0)?.scheme != nil },
    ]

    private static func matches(_ string: String, _ pattern: String) -> Bool {
        string.range(of: pattern, options: .regularExpression) != nil
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

extension JSONValue {
    /// `3` rather than `3.0` for whole bounds.
    var compactNumber: String {
        guard let number = numericValue else { return text }
        return number.rounded() == number && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
