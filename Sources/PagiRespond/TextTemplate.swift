import Foundation
import Mustache
import PagiConfig

/// A Mustache template compiled once, when the config is compiled; text without tags is kept as is
/// and costs nothing per request.
struct TextTemplate: Sendable {
    /// How inserted values are escaped: only HTML responses escape (contract §5.2); everything
    /// else gets a value exactly as the request sent it.
    enum Escaping: Sendable { case none, html }

    private enum Form: Sendable {
        case literal(String)
        case mustache(MustacheTemplate)
    }
    private let form: Form

    /// Selects swift-mustache's non-escaping content type. It is a standalone line, which Mustache
    /// removes entirely, so it changes nothing in the output.
    private static let textPragma = "{{% CONTENT_TYPE: TEXT}}\n"

    /// Throws a `ConfigError` pointing into the config (or stub file) when `text` does not parse.
    init(_ text: String, escaping: Escaping, origin: TemplateOrigin) throws {
        guard text.contains("{{") else {
            form = .literal(text)
            return
        }
        do {
            // Parsed as written first, so an error's line and column are the user's own.
            let asWritten = try MustacheTemplate(string: text)
            form = .mustache(escaping == .html ? asWritten : try MustacheTemplate(string: Self.textPragma + text))
        } catch let error as MustacheTemplate.ParserError {
            throw ConfigError(diagnostics: [Diagnostic(.error, "invalid template: \(Self.describe(error.error))",
                                                       at: origin.location(of: error.context))])
        }
    }

    /// The text when the template has no tags (so a response can be built once, at load).
    var literal: String? {
        if case .literal(let text) = form { return text }
        return nil
    }

    func render(_ context: RequestContext) -> String {
        switch form {
        case .literal(let text): return text
        case .mustache(let template): return template.render(context)
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case MustacheTemplate.Error.sectionCloseNameIncorrect: return "closing tag does not match the open section"
        case MustacheTemplate.Error.unfinishedName: return "unfinished tag"
        case MustacheTemplate.Error.expectedSectionEnd: return "section is never closed"
        case MustacheTemplate.Error.invalidSetDelimiter: return "invalid set-delimiter tag"
        case MustacheTemplate.Error.unrecognisedConfigVariable, MustacheTemplate.Error.invalidConfigVariableSyntax:
            return "invalid pragma tag"
        default: return "unexpected end of template (a tag is not closed)"
        }
    }
}

/// Where a template's text was written, to turn a position inside the template into a position
/// in a file the user can open.
enum TemplateOrigin: Sendable {
    /// A stub file used as a whole (`file:` with `template: true`).
    case file(path: String)
    /// A string written in the config under the handler at this location. Option values carry no
    /// positions of their own, so the template's line is looked up in the file from there on.
    case config(handler: SourceLocation)

    func location(of context: MustacheParserContext) -> SourceLocation {
        switch self {
        case .file(let path):
            return SourceLocation(file: path, line: context.lineNumber, column: context.columnNumber)
        case .config(let handler):
            guard !context.line.isEmpty, let text = try? String(contentsOfFile: handler.file, encoding: .utf8) else { return handler }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated().dropFirst(handler.line - 1) {
                if let range = line.range(of: context.line) {
                    let column = line.distance(from: line.startIndex, to: range.lowerBound) + context.columnNumber
                    return SourceLocation(file: handler.file, line: index + 1, column: column)
                }
            }
            return handler
        }
    }
}
