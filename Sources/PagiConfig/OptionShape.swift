/// The expected shape of an option value, so handler and middleware options can be validated
/// from a table of keys instead of one hand-written reader per key.
enum OptionShape {
    case string
    case bool
    case duration
    case size
    /// A file path (resolved later by `ConfigBuilder.options(_:resolvingPaths:)`).
    case path
    case anyValue
    case stringList(String)
    case stringMap
    case count(ClosedRange<Int>)
    case status(ClosedRange<Int>)
    case statusIn([Int])
    case choice([String])
    case cidrList
    case custom((YAMLNode) -> Void)
}

extension ConfigBuilder {
    /// Checks every key of the mapping `node` against `shapes`; unknown keys get a did-you-mean hint.
    @discardableResult
    func checkOptions(_ node: YAMLNode, _ name: String, _ shapes: [(key: String, shape: OptionShape)]) -> Section? {
        guard let section = section(node, name, keys: shapes.map(\.key)) else { return nil }
        for (key, shape) in shapes {
            if let value = section[key] { check(value, is: shape, key: key) }
        }
        return section
    }

    func check(_ node: YAMLNode, is shape: OptionShape, key: String) {
        switch shape {
        case .string: _ = string(node)
        case .bool: _ = bool(node)
        case .duration: _ = duration(node)
        case .size: _ = size(node)
        case .path: _ = string(node, "a path")
        case .anyValue: break
        case .stringList(let what): _ = stringList(node, what)
        case .stringMap: _ = stringMap(node, key)
        case .count(let range): _ = integer(node, "a number", in: range)
        case .status(let range): _ = status(node, in: range)
        case .statusIn(let codes):
            if let code = status(node, in: 100...599), !codes.contains(code) {
                log.error("invalid status code \(code) for \(key) (expected one of: \(codes.map(String.init).joined(separator: ", ")))", at: node.location)
            }
        case .choice(let options): _ = choice(node, key, options: options)
        case .cidrList:
            for item in stringList(node, "a list of CIDRs") ?? [] where NetworkSyntax.cidr(item.text) == nil {
                log.error("invalid CIDR '\(item.text)' (expected e.g. 10.0.0.0/8 or fd00::/8)", at: item.location)
            }
        case .custom(let validate): validate(node)
        }
    }

    /// Reports a section that has none of `keys` (e.g. a websocket with no mode).
    func requireOne(of keys: [String], in section: Section, _ name: String) {
        requireAtMostOne(of: keys, in: section, name)
        if keys.allSatisfy({ section[$0] == nil }) {
            log.error("\(name) needs one of: \(keys.joined(separator: ", "))", at: section.location)
        }
    }
}
