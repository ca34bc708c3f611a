import Foundation

/// A channel name that may contain `{{path.NAME}}` placeholders, filled from the route's
/// captured parameters (`chat:{{path.room}}` → `chat:lobby`). Deliberately minimal and isolated:
/// the project's general template engine replaces it once it exists.
struct ChannelNameTemplate: Sendable, Equatable {
    let source: String

    init(_ source: String) { self.source = source }

    /// The channel name for a request with route parameters `params`; an unknown parameter
    /// becomes the empty string.
    func render(params: [String: String]) -> String {
        var result = ""
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                rest = rest[open.lowerBound...]
                break
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("path.") {
                result += params[String(name.dropFirst(5))] ?? ""
            } else {
                result += rest[open.lowerBound..<close.upperBound]
            }
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}
