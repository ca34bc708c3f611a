import PagiConfig
import PagiCore

/// A `json:` value from the config, with its string leaves compiled as templates. Only leaves are
/// templated and each rendered leaf is JSON-encoded, so no request value can change the
/// document's structure (docs/configuration.md §9.2). Subtrees without templates are encoded once, at load.
indirect enum JSONTemplate: Sendable {
    case encoded(String)
    case string(TextTemplate)
    case array([JSONTemplate])
    case object([(key: String, value: JSONTemplate)])

    init(_ value: ConfigValue, origin: TemplateOrigin) throws {
        switch value {
        case .null: self = .encoded("null")
        case .bool(let flag): self = .encoded(flag ? "true" : "false")
        case .int(let integer): self = .encoded(String(integer))
        case .double(let number): self = .encoded(number.isFinite ? String(number) : "null")
        case .string(let text):
            let template = try TextTemplate(text, escaping: .none, origin: origin)
            self = template.literal.map { .encoded(TextEscaping.jsonString($0)) } ?? .string(template)
        case .list(let items):
            let elements = try items.map { try JSONTemplate($0, origin: origin) }
            self = Self.joinedIfEncoded(elements.map { ("", $0) }, open: "[", close: "]") ?? .array(elements)
        case .map(let pairs):
            let members = try pairs.map { (key: $0.key, value: try JSONTemplate($0.value, origin: origin)) }
            self = Self.joinedIfEncoded(members.map { (TextEscaping.jsonString($0.key) + ":", $0.value) }, open: "{", close: "}")
                ?? .object(members)
        }
    }

    /// The whole document when nothing in it depends on the request.
    var encoded: String? {
        if case .encoded(let text) = self { return text }
        return nil
    }

    func render(_ context: TemplateContext) -> String {
        var out = ""
        render(into: &out, context)
        return out
    }

    private func render(into out: inout String, _ context: TemplateContext) {
        switch self {
        case .encoded(let text):
            out += text
        case .string(let template):
            out += TextEscaping.jsonString(template.render(context))
        case .array(let elements): JSONValue.writeArray(elements, to: &out) { $0.render(into: &$1, context) }
        case .object(let members): JSONValue.writeObject(members, to: &out) { $0.render(into: &$1, context) }
        }
    }

    /// One encoded text for a container whose parts are all encoded already.
    private static func joinedIfEncoded(_ parts: [(prefix: String, value: JSONTemplate)], open: String, close: String) -> JSONTemplate? {
        var texts: [String] = []
        for part in parts {
            guard let text = part.value.encoded else { return nil }
            texts.append(part.prefix + text)
        }
        return .encoded(open + texts.joined(separator: ",") + close)
    }
}
