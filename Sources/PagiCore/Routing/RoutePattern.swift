/// A route path pattern (contract §4.1) taken apart for the segment trie.
///
/// A path is read as the segments between its slashes: `/` is one empty segment, `/docs` is
/// `docs`, `/docs/` is `docs` followed by an empty segment. `/{$}` is therefore the literal empty
/// segment (only `/` has it), and a trailing slash or `{rest...}` is a *tail*: it matches one or
/// more remaining segments, i.e. `/docs/` and everything below it.
struct RoutePattern: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(Substring)
        case parameter(String)
    }
    enum Ending: Sendable, Equatable {
        /// The pattern ends after its last segment.
        case exact
        /// A subtree (`/docs/`, `rest` nil) or a rest capture (`/files/{rest...}`).
        case tail(restName: String?)
    }

    let segments: [Segment]
    let ending: Ending

    /// Names of the single-segment parameters, in the order their values are captured.
    var parameterNames: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { name } else { nil } }
    }

    /// Parses `pattern`; throws a message saying what is wrong with it.
    init(parsing pattern: String) throws(PatternError) {
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
                let name = part.dropFirst().dropLast()
                guard !name.hasPrefix(".") else { throw PatternError("'\(part)' needs a parameter name") }
                if name.hasSuffix("...") {
                    guard isLast else { throw PatternError("'\(part)' must be the last segment") }
                    ending = .tail(restName: String(name.dropLast(3)))
                } else if name == "$" {
                    throw PatternError("'{$}' is only allowed as '/{$}'")
                } else {
                    segments.append(.parameter(String(name)))
                }
            } else if part.contains("{") || part.contains("}") {
                throw PatternError("'{…}' must be a whole segment, got '\(part)'")
            } else {
                segments.append(.literal(part))
            }
        }
        self.segments = segments
        self.ending = ending
    }
}

struct PatternError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
