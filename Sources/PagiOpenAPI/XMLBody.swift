import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An XML body as a tree of elements, read with Foundation's `XMLParser` (the toolchain's own
/// libxml2 binding). Only for checking a body against its schema, which `RequestValidator` does by
/// reading the tree as the schema's object (OpenAPI's XML Object: `name`, `attribute`, `wrapped`).
struct XMLElementTree {
    var name: String
    var attributes: [String: String] = [:]
    var text = ""
    var children: [XMLElementTree] = []

    /// nil when the body is not well-formed XML.
    static func parse(_ body: [UInt8]) -> XMLElementTree? {
        let builder = Builder()
        let parser = XMLParser(data: Data(body))
        parser.delegate = builder
        parser.shouldResolveExternalEntities = false
        guard parser.parse() else { return nil }
        return builder.root
    }

    func children(named name: String) -> [XMLElementTree] {
        children.filter { $0.name == name }
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var root: XMLElementTree?
        private var open: [XMLElementTree] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            open.append(XMLElementTree(name: name, attributes: attributes))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !open.isEmpty { open[open.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            guard let element = open.popLast() else { return }
            if open.isEmpty { root = element } else { open[open.count - 1].children.append(element) }
        }
    }
}
