/// A route path pattern (docs/configuration.md §8.1) taken apart for the segment trie.
///
/// A path is read as the segments between its slashes: `/` is one empty segment, `/docs` is
/// `docs`, `/docs/` is `docs` followed by an empty segment. `/{$}` is therefore the literal empty
/// segment (only `/` has it), and a trailing slash or `{rest...}` is a *tail*: it matches one or
/// more remaining segments, i.e. `/docs/` and everything below it.
///
/// Parsed once, by the loader; routing, `static`'s mount point, channel names and `openapi`'s
/// mount all read this parsed form.
public struct RoutePattern: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(Substring)
        case parameter(String)
    }
    public enum Ending: Sendable, Hashable {
        /// The pattern ends after its last segment.
        case exact
        /// A subtree (`/docs/`, `rest` nil) or a rest capture (`/files/{rest...}`).
        case tail(restName: String?)
    }

    /// The pattern as written.
    public let text: String
    public let segments: [Segment]
    public let ending: Ending

    public var description: String { text }

    /// Names of the single-segment parameters, in the order their values are captured.
    public var parameterNames: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { name } else { nil } }
    }

    /// The name of the `{rest...}` capture, if the pattern ends with one.
    public var restName: String? {
        if case .tail(let name) = ending { name } else { nil }
    }

    /// Whether a request can capture `name` (`{name}` or `{name...}`).
    public func captures(_ name: String) -> Bool {
        parameterNames.contains(name) || restName == name
    }

    /// A plain subtree with no parameter (`/api/`): what a mount point of its own needs.
    public var isPlainSubtree: Bool {
        ending == .tail(restName: nil) && parameterNames.isEmpty
    }

    /// Parses `pattern`; throws a message saying what is wrong with it.
    public init(parsing pattern: String) throws(PatternError) {
        text = pattern
        guard pattern.hasPrefix("/") else { throw PatternError("it must start with '/'") }
        if pattern == "/{$}" {
            segments = [.literal("")]
            ending = .exact
            return
        }
        let parts = pattern.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var segments: [Segment] = []
        var ending = Ending.exact
        for (index, part) in parts.enumerated() {
            let isLast = index == parts.count - 1
            if part.isEmpty {
                guard isLast else { throw PatternError("empty segment ('//')") }
                ending = .tail(restName: nil)
            } else if part.hasPrefix("{"), part.hasSuffix("}"), part.count > 2 {
                var name = part.dropFirst().dropLast()
                if name == "$" { throw PatternError("'{$}' is only allowed as '/{$}'") }
                let isRest = name.hasSuffix("...")
                if isRest {
                    name = name.dropLast(3)
                    guard isLast else { throw PatternError("'{\(name)...}' must be the last segment") }
                }
                guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                      name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
                else { throw PatternError("invalid parameter name '\(name)' (letters, digits and '_')") }
                guard !segments.contains(.parameter(String(name))) else { throw PatternError("duplicate parameter name '\(name)'") }
                if isRest {
                    ending = .tail(restName: String(name))
                } else {
                    segments.append(.parameter(String(name)))
                }
            } else if part.utf8.contains(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") }) {
                // Bytes, not Foundation's `contains(_: StringProtocol)`: that was an eighth of `check`
                // on 10,000 routes (docs/performance.md, *Round five*).
                throw PatternError("'{…}' must be a whole segment, got '\(part)'")
            } else {
                segments.append(.literal(part))
            }
        }
        self.segments = segments
        self.ending = ending
    }
}

public struct PatternError: Error, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
}
