import Foundation
import Mustache
import PagiConfig
import Synchronization

/// A Mustache template compiled once, when the config is compiled; text without tags is kept as is
/// and costs nothing per request.
struct TextTemplate: Sendable {
    /// How inserted values are escaped: only HTML responses escape (docs/configuration.md §9.2); everything
    /// else gets a value exactly as the request sent it.
    enum Escaping: Sendable { case none, html }

    private enum Form: Sendable {
        case literal(String)
        /// Text and plain `{{name}}` / `{{name.key}}` references only, in a response that escapes
        /// nothing (see `References`).
        case references(References, fallback: DeferredMustache)
        case mustache(MustacheTemplate)
    }
    private let form: Form

    /// Selects swift-mustache's non-escaping content type. It is a standalone line, which Mustache
    /// removes entirely, so it changes nothing in the output.
    private static let textPragma = "{{% CONTENT_TYPE: TEXT}}\n"

    /// Throws a `ConfigError` pointing into the config (or stub file) when `text` does not parse.
    init(_ text: String, escaping: Escaping, origin: TemplateOrigin) throws {
        // A byte scan first: `contains("{{")` goes through Foundation, for every string of every stub.
        guard text.utf8.contains(UInt8(ascii: "{")), text.contains("{{") else {
            form = .literal(text)
            return
        }
        if escaping == .none, let references = References(text) {
            // Only names and text: valid Mustache, so swift-mustache's parse (two thirds of compiling
            // a templated stub, docs/performance.md, *Round five*) waits until a value needs it.
            form = .references(references, fallback: DeferredMustache(Self.textPragma + text))
            return
        }
        do {
            if escaping == .html {
                form = .mustache(try MustacheTemplate(string: text))
            } else {
                let template: MustacheTemplate
                do {
                    template = try MustacheTemplate(string: Self.textPragma + text)
                } catch {
                    // Parsed again as written, so that the error's line and column are the user's own
                    // (only on failure: parsing is most of what compiling a large config costs).
                    _ = try MustacheTemplate(string: text)
                    throw error
                }
                form = .mustache(template)
            }
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

    func render(_ context: TemplateContext) -> String {
        switch form {
        case .literal(let text): return text
        case .references(let references, let fallback): return references.render(context) ?? fallback.render(context)
        case .mustache(let template): return template.render(context)
        }
    }

    /// Rendered by swift-mustache itself, whatever the template (for tests that compare).
    func renderedByMustache(_ context: TemplateContext) -> String {
        switch form {
        case .literal(let text): return text
        case .references(_, let deferred): return deferred.render(context)
        case .mustache(let template): return template.render(context)
        }
    }

    /// Whether the template is rendered without swift-mustache when its values are plain text.
    var rendersReferencesDirectly: Bool {
        if case .references = form { return true }
        return false
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

/// A template that is only text and variable references such as `{{path.id}}` (the common stub:
/// an id in a JSON body), rendered by looking the names up directly. swift-mustache resolves every
/// name through dynamic casts on the context (`MustacheParent`, transforms, lambdas): ~60 % of a
/// templated response's instructions (callgrind). Written by hand for this subset only: any other
/// tag (sections, partials, `{{{…}}}`, `{{&…}}`, comments, transforms) keeps the whole template
/// with swift-mustache, and so does a value that is not plain text (then `render` returns nil).
/// Only for responses that escape nothing: HTML escaping stays with swift-mustache.
struct References: Sendable {
    enum Piece: Sendable, Equatable {
        case text(String)
        /// A dotted name, split at its dots.
        case name([String])
    }
    let pieces: [Piece]

    /// Scanned as bytes: through Foundation (`range(of:)`, `trimmingCharacters`) this was a third of
    /// compiling a templated stub.
    init?(_ template: String) {
        let bytes = Array(template.utf8)
        var pieces: [Piece] = []
        var textStart = 0, index = 0
        while index + 1 < bytes.count {
            guard bytes[index] == UInt8(ascii: "{") && bytes[index + 1] == UInt8(ascii: "{") else {
                index += 1
                continue
            }
            if index > textStart { pieces.append(.text(String(decoding: bytes[textStart..<index], as: UTF8.self))) }
            var close = index + 2
            while close + 1 < bytes.count && !(bytes[close] == UInt8(ascii: "}") && bytes[close + 1] == UInt8(ascii: "}")) { close += 1 }
            guard close + 1 < bytes.count else { return nil }
            var name = bytes[(index + 2)..<close]
            while let first = name.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { name = name.dropFirst() }
            while let last = name.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { name = name.dropLast() }
            let parts = name.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(Self.isNameByte) }) else { return nil }
            pieces.append(.name(parts.map { String(decoding: $0, as: UTF8.self) }))
            index = close + 2
            textStart = index
        }
        if textStart < bytes.count { pieces.append(.text(String(decoding: bytes[textStart...], as: UTF8.self))) }
        self.pieces = pieces
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// As swift-mustache renders it without escaping: a missing name is empty. nil when a value is
    /// not plain text (a list, a number, a JSON object…).
    func render(_ context: TemplateContext) -> String? {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let text):
                out += text
            case .name(let names):
                // `path`, `query` and `headers` are the only maps of text: `{{path.id}}` is a text or
                // nothing. Every other name holds a text or a value only swift-mustache prints; a
                // missing name, and any name below it, renders as nothing.
                if let map = context.stringMap(named: names[0]) {
                    guard names.count == 2 else { return nil }
                    if let text = map[names[1]] { out += text }
                } else if let value = context.child(named: names[0]) {
                    guard names.count == 1, let text = value as? String else { return nil }
                    out += text
                }
            }
        }
        return out
    }
}

/// swift-mustache's template of a `References` template, parsed the first time a value that is not
/// plain text needs it. The text parses (`References` accepted it: text and names only); should it
/// not, it renders as nothing.
final class DeferredMustache: Sendable {
    private let text: String
    private let parsed = Mutex<MustacheTemplate?>(nil)

    init(_ text: String) { self.text = text }

    func render(_ context: TemplateContext) -> String {
        let template = parsed.withLock { cached in
            if cached == nil { cached = try? MustacheTemplate(string: text) }
            return cached
        }
        return template?.render(context) ?? ""
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
