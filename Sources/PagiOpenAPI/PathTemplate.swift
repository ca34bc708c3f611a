/// An OpenAPI path (`/users/{id}`, `/files/{name}.json`) matched against request paths, segment
/// by segment; a template segment may have a literal prefix and suffix around one parameter.
struct PathTemplate: Sendable {
    enum Segment: Sendable {
        case literal(String)
        case parameter(name: String, prefix: String, suffix: String)
    }

    let text: String
    let segments: [Segment]

    init(_ text: String) {
        self.text = text
        segments = text.split(separator: "/", omittingEmptySubsequences: true).map { part in
            guard let open = part.firstIndex(of: "{"), let close = part[open...].firstIndex(of: "}") else { return .literal(String(part)) }
            return .parameter(name: String(part[part.index(after: open)..<close]), prefix: String(part[..<open]),
                              suffix: String(part[part.index(after: close)...]))
        }
    }

    /// The captured parameters, or nil when `path` does not match.
    func match(_ components: [Substring]) -> [String: String]? {
        guard components.count == segments.count else { return nil }
        var captured: [String: String] = [:]
        for (segment, component) in zip(segments, components) {
            switch segment {
            case .literal(let literal):
                guard component == literal else { return nil }
            case .parameter(let name, let prefix, let suffix):
                guard component.count > prefix.count + suffix.count, component.hasPrefix(prefix), component.hasSuffix(suffix) else { return nil }
                captured[name] = String(component.dropFirst(prefix.count).dropLast(suffix.count))
            }
        }
        return captured
    }

    /// Concrete paths win over templated ones (OpenAPI §4.8.8): compare literal segments left to right.
    var specificity: [Bool] {
        segments.map { if case .literal = $0 { true } else { false } }
    }
}
