import Foundation
import OpenAPIKit
import OpenAPIKit30
import OpenAPIKitCompat
import PagiConfig
import Yams

/// Reads an OpenAPI 3.0 or 3.1 document, YAML or JSON (Yams reads both: JSON is YAML's flow
/// style), into OpenAPIKit's resolved form with every local `$ref` replaced. 3.0 documents go
/// through OpenAPIKit's compatibility converter, so the rest of the module sees only 3.1 types.
/// Every failure is a `ConfigError` naming the spec file, at the line and column when known.
enum SpecLoader {
    static func load(path: String, mountedAt route: SourceLocation) throws -> OpenAPIKit.ResolvedDocument {
        let file = (path as NSString).lastPathComponent
        func failure(_ message: String, at mark: Mark? = nil) -> ConfigError {
            let location = mark.map { SourceLocation(file: path, line: $0.line, column: $0.column) } ?? route
            return ConfigError(diagnostics: [Diagnostic(.error, "openapi spec '\(file)': \(message)", at: location)])
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw failure("cannot read the file (missing, unreadable or not UTF-8)")
        }
        let root: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else { throw failure("the file is empty") }
            root = composed
        } catch let error as YamlError {
            switch error {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
                throw failure("not valid YAML or JSON: \(problem)", at: mark)
            default:
                throw failure("not valid YAML or JSON: \(error)")
            }
        }
        let version = root["openapi"]?.string ?? ""
        let document: OpenAPIKit.OpenAPI.Document
        do {
            // Decoded from YAML nodes (not JSONDecoder): only they keep mappings in file order, which
            // OpenAPIKit's ordered maps need ("the first example", properties in schema order).
            let keyed = plainKeys(root)
            if version.hasPrefix("3.0") {
                document = try YAMLDecoder().decode(OpenAPIKit30.OpenAPI.Document.self, from: keyed).convert(to: .v3_1_1)
            } else if version.hasPrefix("3.1") || version.hasPrefix("3.2") {
                document = try YAMLDecoder().decode(OpenAPIKit.OpenAPI.Document.self, from: keyed)
            } else {
                throw failure("unsupported 'openapi' version '\(version)' (expected 3.0.x or 3.1.x)", at: root["openapi"]?.mark ?? root.mark)
            }
        } catch let error as ConfigError {
            throw error
        } catch {
            let described = OpenAPIKit.OpenAPI.Error(from: error)
            throw failure(described.localizedDescription, at: mark(of: described.codingPath, in: root))
        }
        do {
            return try document.locallyDereferenced().resolved()
        } catch {
            throw failure("cannot resolve references: \(OpenAPIKit.OpenAPI.Error(from: error).localizedDescription)")
        }
    }

    /// The same tree with every mapping key re-created as a plain (implicitly tagged) scalar.
    /// Yams looks keys up by building such a node and comparing tags, so a quoted `"200":` (a
    /// string tag) would never be found under the key "200" (an int tag) otherwise.
    private static func plainKeys(_ node: Node) -> Node {
        switch node {
        case .mapping(let mapping):
            return Node(mapping.map { (Node($0.key.string ?? ""), plainKeys($0.value)) })
        case .sequence(let sequence):
            return Node(sequence.map(plainKeys))
        case .scalar, .alias:
            return node
        }
    }

    /// The position of the deepest node along a decoding error's coding path.
    private static func mark(of path: [any CodingKey], in root: Node) -> Mark? {
        var node = root
        var found = root.mark
        for key in path {
            let next: Node?
            if let index = key.intValue, let sequence = node.sequence {
                next = index < sequence.count ? sequence[index] : nil
            } else {
                next = node[key.stringValue]
            }
            guard let next else { break }
            node = next
            found = next.mark ?? found
        }
        return found
    }
}
