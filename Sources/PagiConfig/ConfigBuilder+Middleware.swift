import Foundation

extension ConfigBuilder {
    static let middlewareNames = ["headers", "cors", "basic_auth", "ip_filter", "rate_limit", "compress", "body_limit", "request_id", "rewrite"]
    /// Built-ins that work without options, so they may be written as a bare name.
    private static let bareMiddlewareNames = ["request_id", "compress"]

    /// Top-level `middleware:` — named stacks.
    func readMiddlewareStacks(_ node: YAMLNode) {
        for entry in mapping(node, "middleware") ?? [] {
            if let previous = stackLocations[entry.key] {
                log.error("middleware stack '\(entry.key)' is already defined at \(previous)", at: entry.keyLocation)
                continue
            }
            if Self.middlewareNames.contains(entry.key) {
                log.error("a middleware stack cannot be named '\(entry.key)' like a built-in middleware", at: entry.keyLocation)
            }
            stackLocations[entry.key] = entry.keyLocation
            config.middlewareStacks[entry.key] = readMiddlewareList(entry.value)
        }
    }

    func readMiddlewareList(_ node: YAMLNode) -> [MiddlewareItem] {
        (list(node, "a list of middleware") ?? []).compactMap(readMiddlewareItem)
    }

    private func readMiddlewareItem(_ node: YAMLNode) -> MiddlewareItem? {
        switch node.kind {
        case .scalar(let name, _) where !node.isNull:
            if Self.bareMiddlewareNames.contains(name) { return builtinMiddleware(name, options: nil, at: node.location) }
            if Self.middlewareNames.contains(name) {
                log.error("middleware '\(name)' needs options, e.g. {\(name): {...}}", at: node.location)
                return nil
            }
            stackReferences.append((name, node.location))
            return MiddlewareItem(kind: .stack(name), location: node.location)
        case .map(let pairs) where pairs.count == 1:
            let (key, options) = pairs[0]
            guard let name = key.text, Self.middlewareNames.contains(name) else {
                let hint = key.text.map { Suggestion.hint(for: $0, among: Self.middlewareNames) } ?? ""
                log.error("unknown middleware \(key.shapeDescription)\(hint)", at: key.location)
                return nil
            }
            return builtinMiddleware(name, options: options, at: node.location)
        default:
            log.error("expected a middleware stack name or a one-key mapping like {cors: {...}}, got \(node.shapeDescription)", at: node.location)
            return nil
        }
    }

    private func builtinMiddleware(_ name: String, options node: YAMLNode?, at location: SourceLocation) -> MiddlewareItem? {
        log.warning("middleware '\(name)' is not supported yet", at: location)
        guard let node, !node.isNull else {
            guard Self.bareMiddlewareNames.contains(name) else {
                log.error("middleware '\(name)' needs options", at: location)
                return nil
            }
            return MiddlewareItem(kind: .builtin(name: name, options: .null), location: location)
        }
        checkMiddlewareOptions(name, node)
        let options = options(node, resolvingPaths: name == "basic_auth" ? ["htpasswd"] : [])
        return MiddlewareItem(kind: .builtin(name: name, options: options), location: location)
    }

    private func checkMiddlewareOptions(_ name: String, _ node: YAMLNode) {
        switch name {
        case "headers":
            let requestEdits = OptionShape.custom(checkHeaderEdits)
            checkOptions(node, "headers", [
                ("set", .stringMap), ("add", .stringMap), ("remove", .stringList("a list of header names")), ("request", requestEdits),
            ])
        case "cors":
            guard let section = checkOptions(node, "cors", [
                ("origins", .stringList("a list of origins")), ("methods", .stringList("a list of methods")),
                ("headers", .stringList("a list of header names")), ("expose", .stringList("a list of header names")),
                ("credentials", .bool), ("max_age", .duration),
            ]) else { return }
            let origins: [ConfigValue]
            switch section["origins"]?.value {
            case .list(let items)?: origins = items
            case let single?: origins = [single]
            case nil: origins = []
            }
            if section["credentials"]?.value == .bool(true), origins.contains(.string("*")), let location = section.keyLocation("credentials") {
                log.error("cors cannot allow origin '*' with credentials: true (list the origins)", at: location)
            }
        case "basic_auth":
            if let section = checkOptions(node, "basic_auth", [("realm", .string), ("users", .stringMap), ("htpasswd", .path)]) {
                requireOne(of: ["users", "htpasswd"], in: section, "basic_auth")
            }
        case "ip_filter":
            if let section = checkOptions(node, "ip_filter", [("allow", .cidrList), ("deny", .cidrList)]), section.entries.isEmpty {
                log.error("ip_filter needs 'allow' or 'deny'", at: node.location)
            }
        case "rate_limit":
            if let section = checkOptions(node, "rate_limit", [
                ("rate", .custom(checkRate)), ("burst", .count(1...Int.max)), ("key", .custom(checkRateLimitKey)),
            ]) {
                _ = required("rate", in: section, "rate_limit")
            }
        case "compress":
            checkOptions(node, "compress", [
                ("algorithms", .custom { [self] in
                    for item in list($0, "a list of algorithms") ?? [] { _ = choice(item, "algorithm", options: ["gzip", "br", "zstd", "deflate"]) }
                }),
                ("min_size", .size), ("types", .stringList("a list of media types")),
            ])
        case "body_limit":
            _ = size(node)
        case "request_id":
            checkOptions(node, "request_id", [("header", .string)])
        default: // rewrite
            guard let section = checkOptions(node, "rewrite", [("from", .custom(checkRegex)), ("to", .string)]) else { return }
            _ = required("from", in: section, "rewrite")
            _ = required("to", in: section, "rewrite")
        }
    }

    /// `10/s`, `100/m`, `1000/h`.
    private func checkRate(_ node: YAMLNode) {
        let parts = node.text?.split(separator: "/") ?? []
        guard parts.count == 2, let count = Double(parts[0]), count > 0, ["s", "m", "h"].contains(parts[1]) else {
            log.error("expected a rate like 10/s, got \(node.shapeDescription)", at: node.location)
            return
        }
    }

    private func checkRateLimitKey(_ node: YAMLNode) {
        guard let key = string(node, "client_ip or header:NAME") else { return }
        if key != "client_ip", !(key.hasPrefix("header:") && key.count > "header:".count) {
            log.error("invalid rate_limit key '\(key)' (expected client_ip or header:NAME)", at: node.location)
        }
    }

    private func checkRegex(_ node: YAMLNode) {
        guard let pattern = string(node, "a regular expression") else { return }
        do {
            _ = try NSRegularExpression(pattern: pattern)
        } catch {
            log.error("invalid regular expression '\(pattern)'", at: node.location)
        }
    }

    /// Every stack reference names a defined stack, and stacks do not include themselves. Runs once all files are read.
    func checkStackReferences() {
        let known = config.middlewareStacks.keys.sorted()
        for reference in stackReferences where config.middlewareStacks[reference.name] == nil {
            let hint = Suggestion.hint(for: reference.name, among: known + Self.middlewareNames)
            log.error("unknown middleware '\(reference.name)'\(hint)", at: reference.location)
        }
        for name in known {
            var visiting: [String] = []
            if let cycle = stackCycle(from: name, visiting: &visiting), cycle.first == name, let location = stackLocations[name] {
                log.error("middleware stack '\(name)' includes itself (\(cycle.joined(separator: " → ")))", at: location)
            }
        }
    }

    private func stackCycle(from name: String, visiting: inout [String]) -> [String]? {
        if visiting.contains(name) { return visiting.drop(while: { $0 != name }) + [name] }
        visiting.append(name)
        defer { visiting.removeLast() }
        for case .stack(let inner) in (config.middlewareStacks[name] ?? []).map(\.kind) {
            if let cycle = stackCycle(from: inner, visiting: &visiting) { return cycle }
        }
        return nil
    }
}
