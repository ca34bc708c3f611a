import Foundation
import PagiConfig
import PagiCore

/// `rewrite`: replaces the request's path before routing when the expression matches it, once:
/// the rewritten path is not matched again, so loops are impossible. A `?query` in the target
/// comes first, followed by the request's own query (as nginx does).
struct RewriteMiddleware: Middleware {
    private let expression: NSRegularExpression?
    private let template: String

    init(_ options: RewriteOptions) {
        // Validated by the loader, so this compiles.
        expression = try? NSRegularExpression(pattern: options.from)
        template = options.to
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        guard let expression else { return next.respond(to: &request) }
        let path = request.path as NSString
        guard let match = expression.firstMatch(in: request.path, range: NSRange(location: 0, length: path.length)) else {
            return next.respond(to: &request)
        }
        let replaced = path.replacingCharacters(in: match.range,
                                                with: expression.replacementString(for: match, in: request.path, offset: 0, template: template))
        let parts = replaced.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        // The new path obeys the rules of a path off the wire (docs/configuration.md §8.2).
        guard let newPath = Self.normalised(String(parts[0])) else { return Response(status: 400) }
        request.path = newPath
        if parts.count == 2 {
            let added = String(parts[1])
            request.query = [added, request.query].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "&")
        }
        return next.respond(to: &request)
    }

    /// Without `.` and `..` segments and empty of NUL; nil when it would climb above `/`.
    static func normalised(_ path: String) -> String? {
        guard path.hasPrefix("/"), !path.contains("\0") else { return nil }
        var segments: [Substring] = []
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for (index, segment) in parts.enumerated() {
            switch segment {
            case ".":
                if index == parts.count - 1 { segments.append("") }
            case "..":
                guard !segments.isEmpty else { return nil }
                segments.removeLast()
                if index == parts.count - 1 { segments.append("") }
            default:
                segments.append(segment)
            }
        }
        return "/" + segments.joined(separator: "/")
    }
}
