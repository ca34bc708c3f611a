import Foundation
import PagiConfig
import PagiCore
import Yams

/// Reads an OpenAPI 3.0, 3.1 or 3.2 document, JSON or YAML, into one ordered `JSONValue` tree
/// (`OpenAPIDocument`). JSON goes through PagiCore's parser; YAML through Yams' node tree, turned
/// into JSON values with YAML's own scalar types.
///
/// Hand-written rather than decoded with OpenAPIKit: that decodes the whole document eagerly
/// through `Codable` (examples and extensions as `AnyCodable`: ~70 % of the 7–13 s a 3 MB
/// description took, at 193 MiB), sorts example keys, and cannot dereference recursive schemas;
/// serving needs only the paths, their operations and the schemas they use (docs/performance.md).
/// Every failure is a `ConfigError` naming the spec file, at the line and column when known.
enum SpecLoader {
    static func load(path: String, mountedAt route: SourceLocation) throws -> CompiledSpec {
        let file = (path as NSString).lastPathComponent
        func failure(_ message: String, at mark: Mark? = nil) -> ConfigError {
            let location = mark.map { SourceLocation(file: path, line: $0.line, column: $0.column) } ?? route
            return ConfigError(diagnostics: [Diagnostic(.error, "openapi spec '\(file)': \(message)", at: location)])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw failure("cannot read the file (missing or unreadable)")
        }
        let bytes = [UInt8](data)
        // JSON is YAML too, but PagiCore's parser reads it many times faster than building Yams' nodes.
        let root: JSONValue
        if let json = JSONValue.parse(bytes) {
            root = json
        } else {
            guard let text = String(validating: bytes, as: UTF8.self) else { throw failure("the file is not UTF-8") }
            root = try compose(text, failure: failure).map(json(of:)) ?? .null
        }
        guard case .object = root else { throw failure("the document is not a map of OpenAPI fields") }
        guard case .string(let version)? = root["openapi"], version.hasPrefix("3.0") || version.hasPrefix("3.1") || version.hasPrefix("3.2") else {
            let shown = root["openapi"].map(\.text) ?? "none"
            throw failure("unsupported 'openapi' version \(shown) (expected 3.0.x, 3.1.x or 3.2.x)",
                          at: position(of: ["openapi"], in: path, text: data))
        }
        do {
            return try CompiledSpec(OpenAPIDocument(root: root))
        } catch {
            throw failure(error.message, at: position(of: error.path, in: path, text: data))
        }
    }

    private static func compose(_ text: String, failure: (String, Mark?) -> ConfigError) throws -> Node? {
        do {
            guard let node = try Yams.compose(yaml: text) else { throw failure("the file is empty", nil) }
            return node
        } catch let error as YamlError {
            switch error {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
                throw failure("not valid YAML or JSON: \(problem)", mark)
            default:
                throw failure("not valid YAML or JSON: \(error)", nil)
            }
        }
    }

    /// A YAML node as JSON: scalars by their resolved YAML tag (so `"200"` stays a string and
    /// `200` is an integer), timestamps and other tags as their text, mapping keys as text.
    static func json(of node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            // Yams resolves a plain scalar's type with regular expressions; most scalars of a document
            // (quoted ones, and words like `string`, `object` or a description) cannot be anything
            // but text, which their style or first character shows at once.
            guard scalar.style == .plain || scalar.style == .any, scalar.string.utf8.first.map(mayBeTyped) ?? true else {
                return .string(scalar.string)
            }
            switch Resolver.default.resolveTag(of: node).rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue:
                return node.int.map(JSONValue.integer) ?? node.float.map(JSONValue.number) ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            return .object(mapping.map { (key: $0.key.string ?? "", value: json(of: $0.value)) })
        case .sequence(let sequence):
            return .array(sequence.map(json(of:)))
        case .alias:
            return .null
        }
    }

    /// Whether a plain scalar starting with `byte` may be a YAML null, boolean, number or timestamp.
    private static func mayBeTyped(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "~"),
             UInt8(ascii: "<"), UInt8(ascii: "="), UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "n"), UInt8(ascii: "N"),
             UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "o"), UInt8(ascii: "O"):
            return true
        default:
            return false
        }
    }

    /// Where the node at a JSON pointer path starts in the file (the deepest node found on the
    /// way). Only for reporting a mistake, so the file is read again with Yams here.
    private static func position(of path: [String], in file: String, text: Data) -> Mark? {
        guard let string = String(data: text, encoding: .utf8), let root = try? Yams.compose(yaml: string) else { return nil }
        var node = root
        var found = root.mark
        for step in path {
            let next: Node?
            if let index = Int(step), let sequence = node.sequence {
                next = index < sequence.count ? sequence[index] : nil
            } else {
                next = node.mapping?.first { $0.key.string == step }?.value
            }
            guard let next else { break }
            node = next
            found = next.mark ?? found
        }
        return found
    }
}
