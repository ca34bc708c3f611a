import Foundation
import PagiCore

/// Checks a request against its operation: path, query and header parameters (their text read
/// as the schema's type), then the body, read as the media type its `Content-Type` names.
struct RequestValidator {
    let graph: SchemaGraph

    /// What is wrong with the request: nothing, its media type (415), or the violations (400).
    enum Verdict {
        case valid
        case unsupportedMediaType(String, supported: [String])
        case invalid([Violation])
        /// The credentials the operation requires are missing (401); names what would do.
        case unauthorized(String)
    }

    func verdict(for request: Request, pathParameters: [String: String], operation: StubOperation) -> Verdict {
        let query = Self.queryPairs(request.query)
        if !operation.security.isEmpty, !operation.security.contains(where: { $0.allSatisfy { carries(request, $0, query) } }) {
            return .unauthorized(operation.security.map { $0.map(Self.describe).joined(separator: " and ") }.joined(separator: ", or "))
        }
        var found: [Violation] = []
        for parameter in operation.parameters {
            let raw: [String]
            let location = parameter.location
            switch location {
            case "path": raw = pathParameters[parameter.name].map { [$0] } ?? []
            case "query": raw = query.filter { $0.name == parameter.name }.map(\.value)
            case "header": raw = request.headers.values(parameter.name)
            default: continue  // cookies are not checked
            }
            guard !raw.isEmpty else {
                if parameter.required {
                    found.append(Violation(location: location, name: parameter.name, expected: "required parameter", got: "missing"))
                }
                continue
            }
            guard let schema = parameter.schema else { continue }
            let repeated = raw.count > 1 || (parameter.explode && location == "query" && isArray(schema))
            let typed = repeated ? .array(raw.map { value(of: $0, as: items(of: schema)) }) : value(of: raw[0], as: schema)
            found += SchemaValidator(graph: graph, location: location).validate(typed, against: schema, at: parameter.name)
        }
        if let body = operation.body {
            switch bodyVerdict(request, body) {
            case .valid: break
            case .invalid(let violations): found += violations
            case let refusal: return refusal
            }
        }
        return found.isEmpty ? .valid : .invalid(found)
    }

    private func carries(_ request: Request, _ credential: StubOperation.Credential, _ query: [(name: String, value: String)]) -> Bool {
        switch credential {
        case .header(let name): return request.headers[name] != nil
        case .query(let name): return query.contains { $0.name == name }
        case .cookie(let name):
            return request.headers.values("Cookie").contains { line in
                line.split(separator: ";").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name + "=") }
            }
        }
    }

    private static func describe(_ credential: StubOperation.Credential) -> String {
        switch credential {
        case .header(let name): "header \(name)"
        case .query(let name): "query parameter \(name)"
        case .cookie(let name): "cookie \(name)"
        }
    }

    private func bodyVerdict(_ request: Request, _ rule: StubOperation.BodyRule) -> Verdict {
        guard !request.body.isEmpty else {
            return rule.required ? .invalid([Violation(location: "body", name: "", expected: "a request body", got: "none")]) : .valid
        }
        guard !rule.media.isEmpty else { return .valid }
        // Without a Content-Type, the body is taken to be of the first declared type.
        let type = request.headers["Content-Type"].map(MediaType.essence) ?? rule.media[0].type
        guard let declared = rule.media.first(where: { MediaType.covers($0.type, type) }) else {
            return .unsupportedMediaType(type, supported: rule.media.map(\.type))
        }
        guard let schema = declared.schema else { return .valid }
        let value: JSONValue
        if MediaType.isJSON(type) {
            // Routing's parse when a `body_json` condition read the body already.
            guard let json = request.bodyJSON else {
                return .invalid([Violation(location: "body", name: "", expected: "JSON", got: "text that is not JSON")])
            }
            value = json
        } else if type == "application/x-www-form-urlencoded" {
            guard let text = String(validating: request.body, as: UTF8.self) else {
                return .invalid([Violation(location: "body", name: "", expected: "a form (UTF-8)", got: "bytes that are not UTF-8")])
            }
            value = fields(Self.queryPairs(text), as: schema)
        } else if type == "multipart/form-data" {
            guard let parts = MultipartForm.fields(of: request.body, contentType: request.headers["Content-Type"] ?? "") else {
                return .invalid([Violation(location: "body", name: "", expected: "a multipart/form-data body", got: "a body that is not one")])
            }
            value = fields(parts, as: schema)
        } else if type == "application/xml" || type == "text/xml" || type.hasSuffix("+xml") {
            guard let root = XMLElementTree.parse(request.body) else {
                return .invalid([Violation(location: "body", name: "", expected: "XML", got: "text that is not well-formed XML")])
            }
            value = xml(root, as: schema)
        } else {
            return .valid  // text, binary…: accepted as they are
        }
        let violations = SchemaValidator(graph: graph, location: "body").validate(value, against: schema, at: "")
        return violations.isEmpty ? .valid : .invalid(violations)
    }

    /// Form fields as the object the schema describes: each field's text read as its property's
    /// type, a repeated field (or an array property) as an array. An array is its field repeated
    /// (OpenAPI's `style: form, explode: true`), so an array property with no field is empty; an
    /// object is JSON text (the Encoding Object's default `contentType` for objects).
    private func fields(_ pairs: [(name: String, value: String)], as schema: SchemaID) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = allProperties(of: schema).filter { property in
            isArray(property.schema) && !pairs.contains { $0.name == property.name }
        }.map { ($0.name, .array([])) }
        for (name, _) in pairs where !members.contains(where: { $0.key == name }) {
            let values = pairs.filter { $0.name == name }.map(\.value)
            let property = propertySchema(name, in: schema)
            if let property, values.count > 1 || isArray(property) {
                members.append((name, .array(values.map { field($0, as: items(of: property)) })))
            } else {
                members.append((name, field(values[0], as: property)))
            }
        }
        return .object(members)
    }

    private func field(_ text: String, as id: SchemaID?) -> JSONValue {
        guard let id, graph[id].types?.contains("object") ?? !graph[id].properties.isEmpty else { return value(of: text, as: id) }
        return JSONValue.parse(Array(text.utf8)) ?? .string(text)
    }

    /// An XML element as the value its schema describes (OpenAPI's XML Object): properties are
    /// child elements (or attributes) named by `xml.name` or the property name; an array is its
    /// repeated item elements, inside one element when `wrapped`; text is read as its type.
    /// Elements the schema does not name become string members, for `additionalProperties`.
    private func xml(_ element: XMLElementTree, as id: SchemaID?) -> JSONValue {
        guard let id else { return .string(element.text) }
        let schema = graph[id]
        let type = schema.types?.first(where: { $0 != "null" }) ?? (schema.properties.isEmpty ? (schema.items != nil ? "array" : nil) : "object")
        if type == "object" || type == "array", element.children.isEmpty, !element.text.allSatisfy(\.isWhitespace) {
            return .string(element.text)  // text where elements belong: the wrong type
        }
        switch type {
        case "object":
            var members: [(key: String, value: JSONValue)] = []
            var named: Set<String> = []
            for (name, propertyID) in allProperties(of: id) {
                let property = graph[propertyID]
                let elementName = property.xmlName ?? name
                if property.xmlAttribute {
                    if let text = element.attributes[elementName] { members.append((name, value(of: text, as: propertyID))) }
                } else if isArray(propertyID) {
                    let itemName = property.items.flatMap { graph[$0].xmlName } ?? elementName
                    let items = property.xmlWrapped ? element.children(named: elementName).first?.children(named: itemName) : element.children(named: itemName)
                    if let items, !items.isEmpty || property.xmlWrapped {
                        members.append((name, .array(items.map { xml($0, as: property.items) })))
                    }
                    named.formUnion([elementName, itemName])
                } else if let child = element.children(named: elementName).first {
                    members.append((name, xml(child, as: propertyID)))
                }
                named.insert(elementName)
            }
            for child in element.children where !named.contains(child.name) && !members.contains(where: { $0.key == child.name }) {
                members.append((child.name, .string(child.text)))
            }
            return .object(members)
        case "array":
            return .array(element.children.map { xml($0, as: schema.items) })
        default:
            return element.children.isEmpty ? value(of: element.text, as: id) : .object([])
        }
    }

    /// A schema's properties with those of its `allOf` members.
    private func allProperties(of id: SchemaID) -> [(name: String, schema: SchemaID)] {
        graph[id].properties + graph[id].allOf.flatMap(allProperties(of:))
    }

    private func propertySchema(_ name: String, in id: SchemaID) -> SchemaID? {
        let schema = graph[id]
        return schema.property(name) ?? schema.allOf.lazy.compactMap { propertySchema(name, in: $0) }.first ?? schema.additionalProperties
    }

    private func isArray(_ id: SchemaID) -> Bool {
        graph[id].types?.contains("array") ?? (graph[id].items != nil)
    }

    private func items(of id: SchemaID?) -> SchemaID? {
        id.flatMap { graph[$0].items }
    }

    /// A parameter's text as the JSON value its schema describes (`7` → integer 7); text that does
    /// not convert stays a string, so the validator reports it as the wrong type.
    func value(of raw: String, as id: SchemaID?) -> JSONValue {
        guard let id else { return .string(raw) }
        let schema = graph[id]
        switch schema.types?.first(where: { $0 != "null" }) {
        case "integer": return Int(raw).map(JSONValue.integer) ?? finite(raw) ?? .string(raw)
        case "number": return Int(raw).map(JSONValue.integer) ?? finite(raw) ?? .string(raw)
        case "boolean": return raw == "true" ? .bool(true) : raw == "false" ? .bool(false) : .string(raw)
        case "array":
            // Simple and form styles without explode: `ids=1,2,3`.
            return .array(raw.split(separator: ",", omittingEmptySubsequences: false).map { value(of: String($0), as: schema.items) })
        case "null" where raw.isEmpty: return .null
        default: return .string(raw)
        }
    }

    private func finite(_ raw: String) -> JSONValue? {
        // JSON's number syntax only: Swift's `Double` also reads `0x1p3`, `nan` and `inf`.
        guard raw.allSatisfy({ "0123456789-.eE+".contains($0) }), raw.first != "+", let number = Double(raw), number.isFinite else { return nil }
        return .number(number)
    }

    /// `a=1&b=2&a=3` as decoded pairs, in order and repeated names kept (`Request.queryItems`
    /// keeps one value per name).
    static func queryPairs(_ query: String?) -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentDecoding.decodeForm(String(parts[0])) ?? String(parts[0])
            let value = parts.count > 1 ? (PercentDecoding.decodeForm(String(parts[1])) ?? String(parts[1])) : ""
            return (name, value)
        }
    }
}
