import Foundation
import PagiCore

/// What serving one document needs: its operations with their paths, and every schema they use.
struct CompiledSpec: Sendable {
    /// In document order.
    let endpoints: [(path: String, operation: StubOperation)]
    let schemas: SchemaGraph

    /// Methods of a path item that are operations (OpenAPI §4.8.9); 3.2's `query` too.
    private static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace", "query"]

    init(_ document: OpenAPIDocument) throws(SpecError) {
        var compiler = SchemaCompiler(document: document)
        var endpoints: [(path: String, operation: StubOperation)] = []
        switch document.root["paths"] {
        case .object(let paths)?:
            for (path, item) in paths {
                let (pathItem, itemPath) = try document.dereferenced(item, at: ["paths", path])
                guard case .object = pathItem else { throw SpecError("a path item must be a map", at: itemPath) }
                let shared = try Self.parameters(pathItem["parameters"], at: itemPath + ["parameters"], document, &compiler)
                for method in Self.methods {
                    guard let operation = pathItem[method] else { continue }
                    guard case .object = operation else { throw SpecError("an operation must be a map", at: itemPath + [method]) }
                    endpoints.append((path, try StubOperation(method: method, operation, at: itemPath + [method],
                                                              sharedParameters: shared, document, &compiler)))
                }
            }
        case nil: break  // 3.1: a document may have only webhooks or components
        default: throw SpecError("'paths' must be a map", at: ["paths"])
        }
        // Examples last, when every schema they may reach has been read.
        var synthesizer = ExampleSynthesizer(compiler.graph)
        for index in endpoints.indices { endpoints[index].operation.synthesizeExamples(&synthesizer) }
        self.endpoints = endpoints
        schemas = compiler.graph
    }

    static func parameters(_ list: JSONValue?, at path: [String], _ document: OpenAPIDocument,
                           _ compiler: inout SchemaCompiler) throws(SpecError) -> [StubOperation.ParameterRule] {
        guard let list else { return [] }
        guard case .array(let items) = list else { throw SpecError("'parameters' must be a list", at: path) }
        var rules: [StubOperation.ParameterRule] = []
        for (index, item) in items.enumerated() {
            let (parameter, parameterPath) = try document.dereferenced(item, at: path + ["\(index)"])
            guard case .string(let name)? = parameter["name"], case .string(let location)? = parameter["in"] else {
                throw SpecError("a parameter needs 'name' and 'in'", at: parameterPath)
            }
            var schema: SchemaID?
            if let json = parameter["schema"] {
                schema = try compiler.compile(json, at: parameterPath + ["schema"])
            } else if case .object(let media)? = parameter["content"], let first = media.first, let json = first.value["schema"] {
                schema = try compiler.compile(json, at: parameterPath + ["content", first.key, "schema"])
            }
            let explode = parameter["explode"].map { $0 == .bool(true) } ?? (parameter["style"].map { $0 == .string("form") } ?? true)
            rules.append(.init(name: name, location: location, required: parameter["required"] == .bool(true) || location == "path",
                               schema: schema, explode: explode))
        }
        return rules
    }
}

/// One operation of the document, compiled for serving: the rules requests must follow
/// (parameters, body by media type) and its documented responses with their examples.
struct StubOperation: Sendable {
    let method: String
    let operationId: String?
    let parameters: [ParameterRule]
    let body: BodyRule?
    /// In document order.
    private(set) var responses: [StubResponse]
    /// The credentials the operation requires (OpenAPI's Security Requirement): any one of the
    /// alternatives, each a list of places that must carry a value; empty when none is required.
    let security: [[Credential]]

    /// Where an API key (or HTTP authentication) must be. OAuth 2 and OpenID Connect tokens cannot
    /// be told valid by a stub, so an alternative that uses them asks for nothing.
    enum Credential: Sendable, Equatable {
        case header(String), query(String), cookie(String)
    }

    struct ParameterRule: Sendable {
        let name: String
        /// `path`, `query`, `header` or `cookie`.
        let location: String
        let required: Bool
        let schema: SchemaID?
        /// `form` style with `explode` (the default for query parameters): an array is the
        /// parameter repeated (`id=1&id=2`) rather than one comma-separated value.
        let explode: Bool
    }

    struct BodyRule: Sendable {
        let required: Bool
        /// Media types as declared (lower-cased, parameters dropped), each with its schema.
        let media: [(type: String, schema: SchemaID?)]
    }

    init(method: String, _ operation: JSONValue, at path: [String], sharedParameters: [ParameterRule],
         _ document: OpenAPIDocument, _ compiler: inout SchemaCompiler) throws(SpecError) {
        self.method = method.uppercased()
        if case .string(let id)? = operation["operationId"] { operationId = id } else { operationId = nil }
        // An operation's parameter replaces a path item's of the same name and location.
        let own = try CompiledSpec.parameters(operation["parameters"], at: path + ["parameters"], document, &compiler)
        parameters = sharedParameters.filter { shared in !own.contains { $0.name == shared.name && $0.location == shared.location } } + own
        if let requestBody = operation["requestBody"] {
            let (body, bodyPath) = try document.dereferenced(requestBody, at: path + ["requestBody"])
            var media: [(type: String, schema: SchemaID?)] = []
            if case .object(let types)? = body["content"] {
                for (type, content) in types {
                    let schema = try content["schema"].map { json throws(SpecError) in
                        try compiler.compile(json, at: bodyPath + ["content", type, "schema"])
                    }
                    media.append((MediaType.essence(type), schema))
                }
            }
            self.body = BodyRule(required: body["required"] == .bool(true), media: media)
        } else {
            body = nil
        }
        security = try Self.credentials(operation["security"] ?? document.root["security"], document, at: path + ["security"])
        guard case .object(let responses)? = operation["responses"] else {
            throw SpecError("'responses' must be a map of status codes to responses", at: path + ["responses"])
        }
        var compiled: [StubResponse] = []
        for (code, value) in responses {
            let (response, responsePath) = try document.dereferenced(value, at: path + ["responses", code])
            compiled.append(try StubResponse(code: code, response, at: responsePath, document, &compiler))
        }
        self.responses = compiled
    }

    private static func credentials(_ requirements: JSONValue?, _ document: OpenAPIDocument,
                                    at path: [String]) throws(SpecError) -> [[Credential]] {
        guard case .array(let alternatives)? = requirements else { return [] }
        var result: [[Credential]] = []
        for alternative in alternatives {
            guard case .object(let schemes) = alternative else { continue }
            var needed: [Credential] = []
            for (name, _) in schemes {
                guard let declared = document.root["components"]?["securitySchemes"]?[name] else {
                    throw SpecError("security scheme '\(name)' is not in components.securitySchemes", at: path)
                }
                let (scheme, _) = try document.dereferenced(declared, at: ["components", "securitySchemes", name])
                switch (scheme["type"], scheme["in"], scheme["name"]) {
                case (.string("apiKey")?, .string("header")?, .string(let key)?): needed.append(.header(key))
                case (.string("apiKey")?, .string("query")?, .string(let key)?): needed.append(.query(key))
                case (.string("apiKey")?, .string("cookie")?, .string(let key)?): needed.append(.cookie(key))
                case (.string("http")?, _, _): needed.append(.header("Authorization"))
                default: break
                }
            }
            // An alternative that needs nothing seen here (no scheme, or only tokens) always passes.
            if needed.isEmpty { return [] }
            result.append(needed)
        }
        return result
    }

    mutating func synthesizeExamples(_ synthesizer: inout ExampleSynthesizer) {
        for index in responses.indices { responses[index].synthesizeExamples(&synthesizer) }
    }

    /// The response without preferences: the first documented 2xx, else the first documented one.
    var defaultResponse: StubResponse? {
        responses.first { (200..<300).contains($0.status) && !$0.isDefault } ?? responses.first
    }
}

/// A documented response with its body examples and headers, rendered once when the spec is loaded.
struct StubResponse: Sendable {
    let status: Int
    /// Documented as `default` (or a range such as `4XX`): stands for any status it covers.
    let isDefault: Bool
    let covers: ClosedRange<Int>
    let contentType: String?
    /// Named examples in document order; the unnamed `example` (or a synthesised one) comes
    /// first under the name nil.
    private(set) var examples: [(name: String?, body: [UInt8])] = []
    /// The documented headers, each with a value built from its schema (`synthesizeExamples`).
    private(set) var headers: [(name: String, value: String)] = []
    /// The body's schema when the document gives no example, and the headers' schemas.
    let bodySchema: SchemaID?
    private let headerSchemas: [(name: String, schema: SchemaID)]

    init(code: String, _ response: JSONValue, at path: [String], _ document: OpenAPIDocument,
         _ compiler: inout SchemaCompiler) throws(SpecError) {
        if let status = Int(code), (100...599).contains(status) {
            (self.status, isDefault, covers) = (status, false, status...status)
        } else if code.count == 3, code.uppercased().hasSuffix("XX"), let digit = Int(code.prefix(1)), (1...5).contains(digit) {
            (status, isDefault, covers) = (digit * 100, true, (digit * 100)...(digit * 100 + 99))
        } else if code == "default" {
            (status, isDefault, covers) = (200, true, 100...599)
        } else {
            throw SpecError("'\(code)' is not a status code, a range like 4XX, or 'default'", at: path)
        }
        var headerSchemas: [(name: String, schema: SchemaID)] = []
        if case .object(let documented)? = response["headers"] {
            for (name, value) in documented where name.lowercased() != "content-type" {
                let (header, headerPath) = try document.dereferenced(value, at: path + ["headers", name])
                guard let json = header["schema"] else { continue }
                headerSchemas.append((name, try compiler.compile(json, at: headerPath + ["schema"])))
            }
        }
        self.headerSchemas = headerSchemas
        guard case .object(let content)? = response["content"], let (type, media) = content.first else {
            (contentType, bodySchema) = (nil, nil)
            return
        }
        contentType = type
        let json = MediaType.isJSON(type)
        var examples: [(name: String?, body: [UInt8])] = []
        if let example = media["example"] {
            examples.append((nil, Self.render(example, json: json)))
        }
        if case .object(let named)? = media["examples"] {
            for (name, value) in named {
                let (example, _) = try document.dereferenced(value, at: path + ["content", type, "examples", name])
                if let value = example["value"] { examples.append((name, Self.render(value, json: json))) }
            }
        }
        self.examples = examples
        bodySchema = try examples.isEmpty ? media["schema"].map { schema throws(SpecError) in
            try compiler.compile(schema, at: path + ["content", type, "schema"])
        } : nil
    }

    /// Builds the values the document leaves out: header values, and a body when it has no example.
    mutating func synthesizeExamples(_ synthesizer: inout ExampleSynthesizer) {
        headers = headerSchemas.map { header in
            let value = synthesizer.example(for: header.schema) ?? .string("")
            if case .string(let text) = value { return (header.name, text) }
            return (header.name, value.text)
        }
        if let bodySchema, let value = synthesizer.example(for: bodySchema) {
            examples.append((nil, Self.render(value, json: contentType.map(MediaType.isJSON) ?? true)))
        }
    }

    /// The body of the named example, or of the first one.
    func body(example name: String?) -> [UInt8]? {
        guard let name else { return examples.first?.body ?? [] }
        return examples.first { $0.name == name }?.body
    }

    /// JSON for JSON media types; a string example of another type (text, CSV…) goes out as is.
    private static func render(_ value: JSONValue, json: Bool) -> [UInt8] {
        if !json, case .string(let text) = value { return Array(text.utf8) }
        return Array(value.text.utf8)
    }
}

/// Media type names (RFC 9110 §8.3.1).
enum MediaType {
    /// `type/subtype`, lower-cased, without parameters.
    static func essence(_ contentType: String) -> String {
        let type = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return type.trimmingCharacters(in: .whitespaces).lowercased()
    }

    static func isJSON(_ contentType: String) -> Bool {
        let type = essence(contentType)
        return type == "application/json" || type.hasSuffix("+json")
    }

    /// Whether a declared media type (`application/json`, `image/*`, `*/*`) covers a request's.
    static func covers(_ declared: String, _ type: String) -> Bool {
        if declared == type || declared == "*/*" { return true }
        if declared.hasSuffix("/*") { return type.hasPrefix(declared.dropLast()) }
        return false
    }
}
