import PagiConfig

/// A channel name that may depend on the request (docs/configuration.md §9.5–9.7): `chat:{{path.room}}`.
/// Placeholders: `{{path.NAME}}` (a route parameter), `{{query.NAME}}` (empty when absent) and
/// `{{host}}`. Compiled once with the route, so a typo is a config error, not a silent channel
/// nobody else listens on. A full Mustache engine would add nothing a channel name can use.
public struct ChannelName: Sendable, Hashable, CustomStringConvertible {
    enum Part: Sendable, Hashable {
        case literal(String)
        case pathParameter(String)
        case queryParameter(String)
        case host
    }
    let parts: [Part]
    public let template: String

    /// Compiles `template`; `pattern` is the route's path pattern, whose `{name}` parameters are
    /// the only `path.` names allowed.
    public init(_ template: String, pattern: RoutePattern) throws(ChannelNameError) {
        self.template = template
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw ChannelNameError("unclosed '{{' in channel name '\(template)'")
            }
            let name = String(rest[open.upperBound..<close.lowerBound].trimmingOWS)
            parts.append(try Self.placeholder(name, template: template, pattern: pattern))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        guard !parts.isEmpty else { throw ChannelNameError("a channel name must not be empty") }
        self.parts = parts
    }

    private static func placeholder(_ name: String, template: String, pattern: RoutePattern) throws(ChannelNameError) -> Part {
        if name == "host" { return .host }
        if name.hasPrefix("query."), name.count > 6 { return .queryParameter(String(name.dropFirst(6))) }
        if name.hasPrefix("path.") {
            let parameter = String(name.dropFirst(5))
            guard pattern.captures(parameter) else {
                throw ChannelNameError("channel name '\(template)' uses {{path.\(parameter)}} but the route '\(pattern)' has no {\(parameter)}")
            }
            return .pathParameter(parameter)
        }
        throw ChannelNameError("unknown placeholder {{\(name)}} in channel name '\(template)' (use path.NAME, query.NAME or host)")
    }

    /// True when the name is the same for every request.
    public var isFixed: Bool { parts.allSatisfy { if case .literal = $0 { true } else { false } } }

    /// The channel this request talks to.
    public func resolve(for request: Request) -> String {
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        let query = parts.contains { if case .queryParameter = $0 { true } else { false } } ? request.queryItems : [:]
        var name = ""
        for part in parts {
            switch part {
            case .literal(let text): name += text
            case .pathParameter(let parameter): name += request.params[parameter] ?? ""
            case .queryParameter(let parameter): name += query[parameter] ?? ""
            case .host: name += request.host
            }
        }
        return name
    }

    public var description: String { template }
}

public struct ChannelNameError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
