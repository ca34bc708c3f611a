/// An XML body as a tree of elements. Only for checking a body against its schema, which
/// `RequestValidator` does by reading the tree as the schema's object (OpenAPI's XML Object:
/// `name`, `attribute`, `wrapped`).
struct XMLElementTree {
    /// As written, prefix included (`ns:pet`): namespaces are not resolved.
    var name: String
    var attributes: [String: String] = [:]
    var text = ""
    var children: [XMLElementTree] = []

    /// nil when the body is not well-formed XML, or declares a document type (`XMLReader`).
    static func parse(_ body: [UInt8]) -> XMLElementTree? {
        var reader = XMLReader(body)
        return reader.document()
    }

    func children(named name: String) -> [XMLElementTree] {
        children.filter { $0.name == name }
    }
}

/// A small XML reader, written by hand: the listed packages that read XML (SWXMLHash, XMLCoder)
/// go through Foundation's `XMLParser`, that is FoundationXML and libxml2 with ICU, which the
/// static release binary would then need installed beside it (docs/deployment.md, *One binary*).
/// It reads elements, attributes, text, CDATA sections, comments, processing instructions, the
/// five predefined entities and character references, from UTF-8. A document type declaration is
/// refused: with no DTD there are no entities to expand, so neither external entities (XXE) nor
/// entity bombs can reach the server.
struct XMLReader {
    private let bytes: [UInt8]
    private var index = 0
    /// Deeper nesting than this is refused (the tree is built without recursion, but validating it is not).
    static let maximumDepth = 256

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        // A UTF-8 byte order mark.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    mutating func document() -> XMLElementTree? {
        guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
        guard skipMiscellany(), peek("<"), !peek("</") else { return nil }
        var open: [XMLElementTree] = []
        var root: XMLElementTree?
        while root == nil {
            guard index < bytes.count else { return nil }
            if peek("</") {
                index += 2
                let name = name()
                skipSpace()
                guard let name, take(">"), let element = open.popLast(), element.name == name else { return nil }
                if open.isEmpty { root = element } else { open[open.count - 1].children.append(element) }
            } else if peek("<![CDATA[") {
                index += 9
                guard !open.isEmpty, let end = find("]]>") else { return nil }
                open[open.count - 1].text += String(decoding: bytes[index..<end], as: UTF8.self)
                index = end + 3
            } else if peek("<!--") || peek("<?") {
                guard !open.isEmpty, skipCommentOrInstruction() else { return nil }
            } else if peek("<") {
                index += 1
                guard open.count < Self.maximumDepth, let element = startTag() else { return nil }
                if take("/>") {
                    if open.isEmpty { root = element } else { open[open.count - 1].children.append(element) }
                } else {
                    guard take(">") else { return nil }
                    open.append(element)
                }
            } else {
                guard !open.isEmpty, let text = characters(until: UInt8(ascii: "<")) else { return nil }
                open[open.count - 1].text += text
            }
        }
        guard skipMiscellany(), index == bytes.count else { return nil }
        return root
    }

    // MARK: - Pieces

    /// `name (S attribute)* S?`, after the `<`.
    private mutating func startTag() -> XMLElementTree? {
        guard let name = name() else { return nil }
        var element = XMLElementTree(name: name)
        while true {
            let spaced = skipSpace()
            if peek(">") || peek("/>") { return element }
            guard spaced, let attribute = self.name() else { return nil }
            skipSpace()
            guard take("=") else { return nil }
            skipSpace()
            guard let quote = bytes[safe: index], quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else { return nil }
            index += 1
            guard let value = characters(until: quote), take(quote), element.attributes[attribute] == nil else { return nil }
            element.attributes[attribute] = value
        }
    }

    /// Text up to `end` (not taken), with references replaced; nil on a stray `<` or `&`.
    private mutating func characters(until end: UInt8) -> String? {
        var text: [UInt8] = []
        while let byte = bytes[safe: index], byte != end {
            switch byte {
            case UInt8(ascii: "<"):
                return nil
            case UInt8(ascii: "&"):
                guard let character = reference() else { return nil }
                text.append(contentsOf: character.utf8)
            default:
                text.append(byte)
                index += 1
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// `&amp;` and the other four, `&#60;`, `&#x3C;`.
    private mutating func reference() -> String? {
        guard let semicolon = find(";", within: 12) else { return nil }
        let body = String(decoding: bytes[(index + 1)..<semicolon], as: UTF8.self)
        index = semicolon + 1
        switch body {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        default:
            let scalar: UInt32? = if body.hasPrefix("#x") { UInt32(body.dropFirst(2), radix: 16) }
                else if body.hasPrefix("#") { UInt32(body.dropFirst()) } else { nil }
            guard let scalar, scalar != 0, let character = Unicode.Scalar(scalar) else { return nil }
            return String(Character(character))
        }
    }

    /// An element or attribute name: a letter, `_`, `:` or any non-ASCII character first, then
    /// also digits, `-` and `.`.
    private mutating func name() -> String? {
        let start = index
        while let byte = bytes[safe: index], Self.isNameByte(byte, first: index == start) { index += 1 }
        return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
    }

    private static func isNameByte(_ byte: UInt8, first: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"), UInt8(ascii: ":"), 0x80...:
            return true
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."):
            return !first
        default:
            return false
        }
    }

    /// Whitespace, comments and processing instructions (the XML declaration among them) around
    /// the root element; false on a document type declaration or anything else.
    private mutating func skipMiscellany() -> Bool {
        while true {
            skipSpace()
            guard peek("<!--") || peek("<?") else { return !peek("<!") }
            guard skipCommentOrInstruction() else { return false }
        }
    }

    private mutating func skipCommentOrInstruction() -> Bool {
        let comment = peek("<!--")
        index += comment ? 4 : 2
        guard let end = find(comment ? "-->" : "?>") else { return false }
        index = end + (comment ? 3 : 2)
        return true
    }

    /// Whether any whitespace was skipped.
    @discardableResult
    private mutating func skipSpace() -> Bool {
        let start = index
        while let byte = bytes[safe: index], byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        return index > start
    }

    private func peek(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return text.withUTF8Buffer { bytes[index..<(index + count)].elementsEqual($0) }
    }

    private mutating func take(_ text: StaticString) -> Bool {
        guard peek(text) else { return false }
        index += text.utf8CodeUnitCount
        return true
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard bytes[safe: index] == byte else { return false }
        index += 1
        return true
    }

    /// Where `text` next starts from the current position (within `limit` bytes, when given).
    private func find(_ text: StaticString, within limit: Int? = nil) -> Int? {
        let needle = text.withUTF8Buffer { Array($0) }
        let end = min(bytes.count, limit.map { index + $0 + needle.count } ?? bytes.count)
        guard end - index >= needle.count else { return nil }
        var position = index
        while position + needle.count <= end {
            if bytes[position] == needle[0] && bytes[position..<(position + needle.count)].elementsEqual(needle) { return position }
            position += 1
        }
        return nil
    }
}

private extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
