import OpenAPIKit
import PagiCore

/// Checks a request against its operation: path, query and header parameters (their text read
/// as the schema's type), then the JSON body.
enum RequestValidator {
    static func violations(of request: Request, pathParameters: [String: String], operation: StubOperation) -> [Violation] {
        let query = request.queryItems
        var found: [Violation] = []
        for parameter in operation.parameters {
            let raw: String?
            let location = parameter.location
            switch location {
            case "path": raw = pathParameters[parameter.name]
            case "query": raw = query[parameter.name]
            case "header": raw = request.headers[parameter.name]
            default: continue  // cookies are not checked
            }
            guard let raw else {
                if parameter.required {
                    found.append(Violation(location: location, name: parameter.name, expected: "required parameter", got: "missing"))
                }
                continue
            }
            guard let schema = parameter.schema else { continue }
            found += SchemaValidator(location: location).validate(value(of: raw, as: schema), against: schema, at: parameter.name)
        }
        if let body = operation.body {
            found += bodyViolations(of: request, rule: body)
        }
        return found
    }

    private static func bodyViolations(of request: Request, rule: StubOperation.BodyRule) -> [Violation] {
        guard !request.body.isEmpty else {
            return rule.required ? [Violation(location: "body", name: "", expected: "a request body", got: "none")] : []
        }
        guard let schema = rule.jsonSchema else { return [] }
        // Routing's parse when a `body_json` condition read the body already.
        guard let json = request.bodyJSON else {
            return [Violation(location: "body", name: "", expected: "JSON", got: "text that is not JSON")]
        }
        return SchemaValidator(location: "body").validate(json, against: schema, at: "")
    }

    /// A parameter's text as the JSON value its schema describes (`7` → integer 7); text that does
    /// not convert stays a string, so the validator reports it as the wrong type.
    static func value(of raw: String, as schema: DereferencedJSONSchema) -> JSONValue {
        switch schema {
        case .integer: return Int(raw).map(JSONValue.integer) ?? .string(raw)
        case .number: return Double(raw).map(JSONValue.number) ?? .string(raw)
        case .boolean: return raw == "true" ? .bool(true) : raw == "false" ? .bool(false) : .string(raw)
        case .array(_, let context):
            // Form style, explode false: `ids=1,2,3`.
            return .array(raw.split(separator: ",").map { item in context.items.map { value(of: String(item), as: $0) } ?? .string(String(item)) })
        default: return .string(raw)
        }
    }
}
