import Foundation
import Yams

/// A YAML node after `${VAR}` substitution, carrying its position. The loader works on this tree
/// rather than on Yams' `Node` so that substitution and typing happen exactly once.
struct YAMLNode {
    enum Kind {
        /// `plain` scalars are typed by the YAML 1.2 core schema; quoted and block scalars are strings.
        case scalar(String, plain: Bool)
        case list([YAMLNode])
        case map([(key: YAMLNode, value: YAMLNode)])
    }

    var kind: Kind
    var location: SourceLocation

    var text: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    var isNull: Bool {
        if case .scalar(let text, plain: true) = kind { return CoreSchema.isNull(text) }
        return false
    }

    /// How the node looks, for "expected X, got Y" messages.
    var shapeDescription: String {
        switch kind {
        case .map: return "a mapping"
        case .list: return "a list"
        case .scalar(let text, _): return isNull ? "nothing" : "'\(text)'"
        }
    }

    /// The node as a plain value tree, typed by the core schema.
    var value: ConfigValue {
        switch kind {
        case .scalar(let text, let plain):
            return plain ? CoreSchema.value(of: text) : .string(text)
        case .list(let items):
            return .list(items.map(\.value))
        case .map(let pairs):
            return .map(pairs.map { (key: $0.key.text ?? "", value: $0.value.value) })
        }
    }
}

/// YAML 1.2 core schema resolution of plain scalars.
enum CoreSchema {
    static func isNull(_ text: String) -> Bool {
        ["", "~", "null", "Null", "NULL"].contains(text)
    }

    static func bool(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    static func int(_ text: String) -> Int? {
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
        let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        return Int(text)
    }

    static func double(_ text: String) -> Double? {
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default:
            // Double(_:) also accepts "inf", "nan" and hex floats, which YAML does not.
            guard text.allSatisfy({ $0.isASCIIDigit || "+-.eE".contains($0) }) else { return nil }
            return Double(text)
        }
    }

    static func value(of text: String) -> ConfigValue {
        if isNull(text) { return .null }
        if let bool = bool(text) { return .bool(bool) }
        if let int = int(text) { return .int(int) }
        if let double = double(text) { return .double(double) }
        return .string(text)
    }
}

/// Turns a file's text into a `YAMLNode` tree, reporting syntax errors and `${VAR}` problems.
struct YAMLDocumentReader {
    let file: String
    let environment: [String: String]
    let log: DiagnosticLog

    /// The root node, or nil when the text is empty or not valid YAML (the reason is logged).
    func read(_ text: String) -> YAMLNode? {
        let root: Node?
        do {
            // The basic resolver: scalars keep their text, which the config reader types itself (`CoreSchema`);
            // Yams' default resolver runs its regular expressions on every plain scalar (measured: most of
            // the time `check` spends on a config of 10,000 routes, docs/performance.md).
            root = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            report(error, in: text)
            return nil
        } catch {
            log.error("invalid YAML: \(error)", at: startOfFile)
            return nil
        }
        guard let root else {
            log.error("the file is empty (expected a mapping with at least 'hosts')", at: startOfFile)
            return nil
        }
        return convert(root)
    }

    private var startOfFile: SourceLocation { SourceLocation(file: file, line: 1, column: 1) }

    private func location(_ mark: Mark?) -> SourceLocation {
        guard let mark else { return startOfFile }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    private func convert(_ node: Node) -> YAMLNode {
        let location = location(node.mark)
        switch node {
        case .scalar(let scalar):
            let text = substitute(scalar.string, at: location)
            return YAMLNode(kind: .scalar(text, plain: scalar.style == .plain || scalar.style == .any), location: location)
        case .sequence(let sequence):
            return YAMLNode(kind: .list(sequence.map(convert)), location: location)
        case .mapping(let mapping):
            return YAMLNode(kind: .map(mapping.map { (key: convert($0.key), value: convert($0.value)) }), location: location)
        case .alias:
            // Yams resolves aliases while composing; an unresolved one is reported like a syntax error.
            log.error("invalid YAML: unresolved alias", at: location)
            return YAMLNode(kind: .scalar("", plain: true), location: location)
        }
    }

    /// Replaces `${NAME}` and `${NAME:-default}` (the default also applies when NAME is empty, as in sh).
    private func substitute(_ text: String, at location: SourceLocation) -> String {
        // A byte scan first: `contains("${")` goes through Foundation, and runs for every scalar.
        guard text.utf8.contains(UInt8(ascii: "$")), text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.firstIndex(of: "}") else {
                log.substitutionFailed("unterminated '${' in '\(text)'", at: location)
                return text
            }
            let expression = afterOpen[..<close]
            let name: Substring
            var fallback: Substring?
            if let separator = expression.range(of: ":-") {
                name = expression[..<separator.lowerBound]
                fallback = expression[separator.upperBound...]
            } else {
                name = expression
            }
            if !isVariableName(name) {
                log.substitutionFailed("invalid environment variable name '\(name)' in '${\(expression)}'", at: location)
            } else if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                log.substitutionFailed("environment variable '\(name)' is not set (write ${\(name):-default} to give a default)", at: location)
            }
            rest = afterOpen[afterOpen.index(after: close)...]
        }
        return result + rest
    }

    private func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    private func report(_ error: YamlError, in text: String) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            log.error("invalid YAML: \(problem)\(detail)", at: location(mark))
        case .reader(let problem, let offset, _, _):
            log.error("invalid YAML: \(problem)", at: offset.map { location(ofCharacterOffset: $0, in: text) } ?? startOfFile)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            log.error("duplicate key \(keys) in mapping", at: location(context.mark))
        default:
            log.error("invalid YAML: \(error)", at: startOfFile)
        }
    }

    private func location(ofCharacterOffset offset: Int, in text: String) -> SourceLocation {
        let prefix = text.prefix(offset)
        let line = prefix.count(where: { $0 == "\n" }) + 1
        let column = prefix.count - (prefix.lastIndex(of: "\n").map { prefix.distance(from: prefix.startIndex, to: $0) + 1 } ?? 0) + 1
        return SourceLocation(file: file, line: line, column: column)
    }
}
