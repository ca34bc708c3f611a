import OpenAPIKit
import PagiCore

/// Builds a plausible example from a schema when the document gives none: the schema's own
/// example, default or first enum value when present, else a value of the right type and format
/// (within its bounds), objects with every property, arrays of one item (or `minItems`).
enum ExampleSynthesizer {
    /// Deep enough for real documents; a deeper (self-similar) schema ends in `null`.
    private static let maximumDepth = 12

    static func example(for schema: DereferencedJSONSchema, depth: Int = 0) -> JSONValue {
        guard depth < maximumDepth else { return .null }
        if let given = schema.examples.first ?? schema.defaultValue ?? schema.allowedValues?.first {
            return JSONValue(foundation: given.value)
        }
        switch schema {
        case .null, .not, .fragment: return .null
        case .boolean: return .bool(true)
        case .integer(_, let context):
            var value = context.minimum.map { $0.exclusive ? $0.value + 1 : $0.value } ?? 1
            if let maximum = context.maximum { value = min(value, maximum.exclusive ? maximum.value - 1 : maximum.value) }
            return .integer(value)
        case .number(_, let context):
            var value = context.minimum.map { $0.exclusive ? $0.value + 0.5 : $0.value } ?? 1.5
            if let maximum = context.maximum { value = min(value, maximum.exclusive ? maximum.value - 0.5 : maximum.value) }
            return .number(value)
        case .string(_, let context):
            return .string(string(format: schema.formatString, minLength: context.minLength, maxLength: context.maxLength))
        case .array(_, let context):
            let item = context.items.map { example(for: $0, depth: depth + 1) } ?? .string("string")
            return .array(Array(repeating: item, count: max(1, context.minItems)))
        case .object(_, let context):
            return .object(context.properties.compactMap { name, property in
                property.writeOnly ? nil : (key: name, value: example(for: property, depth: depth + 1))
            })
        case .all(let schemas, _):
            // allOf: the union of the parts' properties (the usual use: a base object plus extras).
            var members: [(key: String, value: JSONValue)] = []
            for part in schemas {
                let value = example(for: part, depth: depth + 1)
                guard case .object(let partMembers) = value else { return value }
                for member in partMembers where !members.contains(where: { $0.key == member.key }) { members.append(member) }
            }
            return .object(members)
        case .one(let schemas, _), .any(let schemas, _):
            return schemas.first.map { example(for: $0, depth: depth + 1) } ?? .null
        }
    }

    private static func string(format: String?, minLength: Int, maxLength: Int?) -> String {
        let text: String = switch format {
        case "date": "2024-01-15"
        case "date-time": "2024-01-15T09:30:00Z"
        case "time": "09:30:00Z"
        case "email": "user@example.com"
        case "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        case "uri", "url": "https://example.com/"
        case "hostname": "example.com"
        case "ipv4": "192.0.2.1"
        case "ipv6": "2001:db8::1"
        case "byte": "c3RyaW5n"
        default: "string"
        }
        let padded = text.count < minLength ? text + String(repeating: "x", count: minLength - text.count) : text
        return maxLength.map { String(padded.prefix($0)) } ?? padded
    }
}
