import Foundation
import OpenAPIKit
import PagiCore

/// One operation of the document, compiled for serving: its path template, the rules requests
/// must follow (parameters, JSON body) and its documented responses with their examples.
struct StubOperation: Sendable {
    let method: String
    let operationId: String?
    let parameters: [ParameterRule]
    let body: BodyRule?
    /// In document order.
    let responses: [StubResponse]

    struct ParameterRule: Sendable {
        let name: String
        /// `path`, `query`, `header` or `cookie` (OpenAPIKit's location type is not Sendable).
        let location: String
        let required: Bool
        let schema: DereferencedJSONSchema?
    }

    struct BodyRule: Sendable {
        let required: Bool
        /// The schema of the JSON media type; nil when the body is not JSON (not validated).
        let jsonSchema: DereferencedJSONSchema?
    }

    init(_ endpoint: ResolvedEndpoint) {
        method = endpoint.method.rawValue.uppercased()
        operationId = endpoint.operationId
        parameters = endpoint.parameters.map { parameter in
            ParameterRule(name: parameter.name, location: parameter.location.rawValue, required: parameter.required,
                          schema: parameter.schemaOrContent.a?.schema)
        }
        body = endpoint.requestBody.map { request in
            let json = request.content.first { StubResponse.isJSON($0.key.rawValue) }
            return BodyRule(required: request.required, jsonSchema: json?.value.schema)
        }
        responses = endpoint.responses.map { StubResponse(code: $0.key, response: $0.value) }
    }

    /// The response without preferences: the first documented 2xx, else the first documented one.
    var defaultResponse: StubResponse? {
        responses.first { (200..<300).contains($0.status) && !$0.isDefault } ?? responses.first
    }
}

/// A documented response with its body examples, rendered once when the spec is loaded.
struct StubResponse: Sendable {
    let status: Int
    /// Documented as `default` (or a range such as `4XX`): stands for any status it covers.
    let isDefault: Bool
    let covers: ClosedRange<Int>
    let contentType: String?
    /// Named examples in document order; the unnamed `example` (or a synthesised one) comes
    /// first under the name nil.
    let examples: [(name: String?, body: [UInt8])]

    init(code: OpenAPI.Response.StatusCode, response: DereferencedResponse) {
        switch code.value {
        case .status(let status):
            (self.status, isDefault, covers) = (status, false, status...status)
        case .range(let range):
            let base = Int(range.rawValue.prefix(1)).map { $0 * 100 } ?? 200
            (status, isDefault, covers) = (base, true, base...(base + 99))
        case .default:
            (status, isDefault, covers) = (200, true, 100...599)
        }
        guard let first = response.content.first else {
            (contentType, examples) = (nil, [])
            return
        }
        let (type, content) = (first.key, first.value)
        contentType = type.rawValue
        let json = Self.isJSON(type.rawValue)
        var examples: [(name: String?, body: [UInt8])] = []
        if let example = content.example {
            examples.append((nil, Self.render(JSONValue(foundation: example.value), json: json)))
        }
        for (name, example) in content.examples ?? [:] {
            if let value = example.dataOrLegacyValue {
                examples.append((name, Self.render(JSONValue(foundation: value.value), json: json)))
            } else if let serialized = example.serializedValue {
                examples.append((name, Array(serialized.utf8)))
            }
        }
        if examples.isEmpty, let schema = content.schema {
            examples.append((nil, Self.render(ExampleSynthesizer.example(for: schema), json: json)))
        }
        self.examples = examples
    }

    /// The body of the named example, or of the first one.
    func body(example name: String?) -> [UInt8]? {
        guard let name else { return examples.first?.body ?? [] }
        return examples.first { $0.name == name }?.body
    }

    static func isJSON(_ contentType: String) -> Bool {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return type == "application/json" || type.hasSuffix("+json")
    }

    /// JSON for JSON media types; a string example of another type (text, CSV…) goes out as is.
    private static func render(_ value: JSONValue, json: Bool) -> [UInt8] {
        if !json, case .string(let text) = value { return Array(text.utf8) }
        return Array(value.text.utf8)
    }
}
