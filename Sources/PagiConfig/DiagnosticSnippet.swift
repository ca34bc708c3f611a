import Foundation

/// Diagnostics as people read them (docs/configuration.md §2.7): `file:line:col: error: …`, then
/// the offending line of the file with a caret under the column, underlining the token that
/// starts there, like rustc and Elm do.
public struct DiagnosticRenderer {
    private var files: [String: [Substring]] = [:]

    public init() {}

    public mutating func render(_ diagnostic: Diagnostic) -> String {
        guard let location = diagnostic.location, let line = sourceLine(location) else { return diagnostic.description }
        let number = String(location.line)
        let gutter = String(repeating: " ", count: number.count)
        // Tabs stay tabs so the caret lines up in a terminal whatever its tab width.
        let lead = line.prefix(max(0, location.column - 1)).map { $0 == "\t" ? "\t" : " " }.joined()
        let token = line.dropFirst(max(0, location.column - 1)).prefix { !$0.isWhitespace && !",:{}[]".contains($0) }
        let caret = "^" + String(repeating: "~", count: max(0, token.count - 1))
        return "\(diagnostic.description)\n\(gutter) |\n\(number) | \(line)\n\(gutter) | \(lead)\(caret)"
    }

    private mutating func sourceLine(_ location: SourceLocation) -> Substring? {
        if files[location.file] == nil {
            guard let text = try? String(contentsOfFile: location.file, encoding: .utf8) else { return nil }
            files[location.file] = text.split(separator: "\n", omittingEmptySubsequences: false)
        }
        guard let lines = files[location.file], location.line >= 1, location.line <= lines.count else { return nil }
        let line = lines[location.line - 1]
        return line.hasSuffix("\r") ? line.dropLast() : line
    }
}
