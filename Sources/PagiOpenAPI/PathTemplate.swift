/// An OpenAPI path (`/users/{id}`, `/files/{name}.json`) matched against request paths, segment
/// by segment; a template segment may have a literal prefix and suffix around one parameter.
/// Compared as UTF-8 bytes, never as `Character`s: a segment that starts with a combining mark
/// must not merge with the `/` before it into one grapheme.
struct PathTemplate: Sendable {
    enum Segment: Sendable {
        case literal(String)
        case parameter(name: String, prefix: String, suffix: String)
    }

    let text: String
    let segments: [Segment]

    init(_ text: String) {
        self.text = text
        segments = Self.components(of: Substring(text)).map { part in
            guard let open = part.utf8.firstIndex(of: UInt8(ascii: "{")),
                  let close = part.utf8[open...].firstIndex(of: UInt8(ascii: "}")) else { return .literal(String(part)) }
            return .parameter(name: String(part[part.utf8.index(after: open)..<close]), prefix: String(part[..<open]),
                              suffix: String(part[part.utf8.index(after: close)...]))
        }
    }

    /// The non-empty segments of a path, split at `/` bytes.
    static func components(of path: Substring) -> [Substring] {
        path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { Substring($0) }
    }

    /// The captured parameters, or nil when the path does not match.
    func match(_ components: [Substring]) -> [String: String]? {
        guard components.count == segments.count else { return nil }
        var captured: [String: String] = [:]
        for (segment, component) in zip(segments, components) {
            let bytes = component.utf8
            switch segment {
            case .literal(let literal):
                guard bytes.elementsEqual(literal.utf8) else { return nil }
            case .parameter(let name, let prefix, let suffix):
                let (head, tail) = (prefix.utf8.count, suffix.utf8.count)
                guard bytes.count > head + tail, bytes.starts(with: prefix.utf8), bytes.reversed().starts(with: suffix.utf8.reversed()) else {
                    return nil
                }
                captured[name] = String(decoding: bytes.dropFirst(head).dropLast(tail), as: UTF8.self)
            }
        }
        return captured
    }

    /// Concrete paths win over templated ones (OpenAPI §4.8.8): compare literal segments left to right.
    var specificity: [Bool] {
        segments.map { if case .literal = $0 { true } else { false } }
    }
}
