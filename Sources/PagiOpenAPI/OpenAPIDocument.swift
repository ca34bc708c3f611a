import PagiCore

/// A mistake in the document, at a JSON pointer path (turned into a line and column when the
/// loader has the YAML at hand).
struct SpecError: Error {
    let message: String
    let path: [String]

    init(_ message: String, at path: [String]) {
        (self.message, self.path) = (message, path)
    }
}

/// The document as one ordered JSON tree, with local `$ref`s resolved on demand (a reference is
/// followed where it is used; nothing is copied).
struct OpenAPIDocument {
    let root: JSONValue

    /// The value `reference` (`#/components/schemas/Pet`) points at, following chains of
    /// references, and its path. Only references into this document are supported.
    func resolve(_ reference: String, from path: [String]) throws(SpecError) -> (value: JSONValue, path: [String]) {
        var reference = reference
        var seen: Set<String> = []
        while true {
            guard reference.hasPrefix("#") else {
                throw SpecError("'\(reference)': only references inside the document ('#/...') are supported", at: path)
            }
            guard seen.insert(reference).inserted else { throw SpecError("'\(reference)' refers to itself", at: path) }
            // RFC 6901: `~1` is `/`, `~0` is `~`; a URI fragment is percent-encoded as well.
            let steps = reference.dropFirst().split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { step in
                (PercentDecoding.decode(String(step)) ?? String(step)).replacingOccurrences(of: "~1", with: "/")
                    .replacingOccurrences(of: "~0", with: "~")
            }
            var value = root
            for step in steps {
                switch value {
                case .object: value = value[step] ?? .null
                case .array(let items): value = Int(step).flatMap { items.indices.contains($0) ? items[$0] : nil } ?? .null
                default: value = .null
                }
                if value == .null { throw SpecError("'\(reference)' points at nothing in the document", at: path) }
            }
            guard case .string(let next)? = value["$ref"] else { return (value, steps) }
            reference = next
        }
    }

    /// `value` itself, or what it refers to when it is a `{$ref: ...}` object.
    func dereferenced(_ value: JSONValue, at path: [String]) throws(SpecError) -> (value: JSONValue, path: [String]) {
        guard case .string(let reference)? = value["$ref"] else { return (value, path) }
        return try resolve(reference, from: path)
    }
}
