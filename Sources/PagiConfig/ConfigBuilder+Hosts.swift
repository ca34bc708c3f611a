import Foundation

extension ConfigBuilder {
    static let hostKeys = ["names", "default", "tls", "middleware", "errors", "routes"]
    static let routeKeys = ["path", "methods", "headers", "query", "body_json", "middleware", "cycle"]

    func readHosts(_ node: YAMLNode) {
        guard let items = list(node, "a list of hosts") else { return }
        if items.isEmpty { log.error("'hosts' needs at least one host", at: node.location) }
        config.hosts += items.compactMap(readHost)
    }

    private func readHost(_ node: YAMLNode) -> HostConfig? {
        guard let section = section(node, "host", keys: Self.hostKeys) else { return nil }
        var host = HostConfig(location: node.location)
        if let value = section["names"], let names = stringList(value, "a list of host names") {
            for name in names {
                let lowered = name.text.lowercased()
                if NetworkSyntax.isVirtualHostName(lowered) {
                    host.names.append(lowered)
                } else {
                    log.error("invalid host name '\(name.text)' (expected e.g. example.com, *.example.com or *)", at: name.location)
                }
            }
        }
        if let value = section["default"], let isDefault = bool(value) { host.isDefault = isDefault }
        if section["names"] == nil, !host.isDefault {
            log.error("host has no 'names' (give it names, or mark it default: true)", at: node.location)
        }
        if let value = section["tls"] { host.tls = readTLS(value) }
        if let value = section["middleware"] { host.middleware = readMiddlewareList(value) }
        if let value = section["errors"], let entries = mapping(value, "errors") {
            for entry in entries {
                let statusNode = YAMLNode(kind: .scalar(entry.key, plain: true), location: entry.keyLocation)
                guard let code = status(statusNode, in: 400...599), let file = path(entry.value) else { continue }
                if FileManager.default.isReadableFile(atPath: file) {
                    host.errorPages[code] = file
                    config.files.append(file)
                } else {
                    log.error("cannot read error page '\(entry.value.text ?? file)'", at: entry.value.location)
                }
            }
        }
        if let value = section["routes"], let routes = list(value, "a list of routes") {
            host.routes = routes.compactMap(readRoute)
        }
        return host
    }

    /// Exactly one default host; no name claimed twice. Runs once every file is read.
    func checkHostUniqueness() {
        var defaultHost: HostConfig?
        var nameOwners: [String: SourceLocation] = [:]
        for host in config.hosts {
            if host.isDefault {
                if let first = defaultHost {
                    log.error("two hosts are marked default: true (\(first.location) and \(host.location))", at: host.location)
                } else {
                    defaultHost = host
                }
            }
            for name in host.names {
                if let owner = nameOwners[name] {
                    log.error("host name '\(name)' is already used by the host at \(owner)", at: host.location)
                } else {
                    nameOwners[name] = host.location
                }
            }
        }
    }

    // MARK: Routes

    private func readRoute(_ node: YAMLNode) -> RouteConfig? {
        guard let section = section(node, "route", keys: Self.routeKeys + Self.handlerNames) else { return nil }
        let handler = readRouteHandler(section)
        let path = readPathPattern(section)
        let methods = section["methods"].flatMap(readMethods)
        let headers = section["headers"].map { stringMap($0, "headers", keyTransform: { $0.lowercased() }) }
        let query = section["query"].map { stringMap($0, "query") }
        let bodyJSON = section["body_json"].map(readBodyJSON)
        let middleware = section["middleware"].map(readMiddlewareList)
        guard let path, let handler else { return nil }
        var route = RouteConfig(pattern: path.pattern, pathLocation: path.location, handler: handler.config,
                                handlerLocation: handler.location, location: node.location)
        route.methods = methods
        route.headers = headers ?? [:]
        route.query = query ?? [:]
        route.bodyJSON = bodyJSON ?? []
        route.middleware = middleware ?? []
        return route
    }

    /// The route's pattern, parsed here once for everything after the loader.
    private func readPathPattern(_ route: Section) -> (pattern: RoutePattern, location: SourceLocation)? {
        guard let node = required("path", in: route, "route"),
              let text = string(node, "a path pattern like /users/{id}")
        else { return nil }
        do {
            return (try RoutePattern(parsing: text), node.location)
        } catch {
            log.error("invalid path pattern '\(text)': \(error.message)", at: node.location)
            return nil
        }
    }

    /// The route's one handler; a `respond` list becomes `{responses: [...], cycle: Bool}` (route key `cycle`).
    private func readRouteHandler(_ route: Section) -> (config: HandlerConfig, location: SourceLocation)? {
        let handlerEntries = route.entries.filter { Self.handlerNames.contains($0.key) }
        guard let entry = handlerEntries.first else {
            log.error("route has no handler (one of: \(Self.handlerNames.joined(separator: ", ")))", at: route.location)
            return nil
        }
        if handlerEntries.count > 1 {
            let named = handlerEntries.map { "'\($0.key)' (line \($0.keyLocation.line))" }.joined(separator: " and ")
            log.error("route has more than one handler: \(named)", at: handlerEntries[1].keyLocation)
        }
        guard let kind = HandlerKind(rawValue: entry.key) else { return nil }
        let handler = readHandler(kind, entry.value, keyLocation: entry.keyLocation)
        let isRespondList = kind == .respond && { if case .list = entry.value.kind { true } else { false } }()
        if !isRespondList, let cycleLocation = route.keyLocation("cycle") {
            log.error("'cycle' only applies when 'respond' is a list of responses", at: cycleLocation)
        }
        if isRespondList, case .respond(var options)? = handler {
            options.cycle = route["cycle"].flatMap(bool) ?? false
            return (.respond(options), entry.keyLocation)
        }
        return handler.map { ($0, entry.keyLocation) }
    }

    private func readMethods(_ node: YAMLNode) -> [String]? {
        guard let items = stringList(node, "a list of HTTP methods") else { return nil }
        if items.isEmpty { log.error("'methods' must name at least one method", at: node.location) }
        let methods = items.compactMap { item -> String? in
            let isToken = item.text.allSatisfy { $0.isASCII && ($0.isLetter || $0 == "-" || $0 == "_") }
            if !isToken { log.error("invalid HTTP method '\(item.text)'", at: item.location) }
            return isToken ? item.text.uppercased() : nil
        }
        return methods.count == items.count && !methods.isEmpty ? methods : nil
    }

    /// A mapping of names to scalar values (`headers:`, `query:`); values are kept as written.
    func stringMap(_ node: YAMLNode, _ name: String, keyTransform: (String) -> String = { $0 }) -> [String: String] {
        var result: [String: String] = [:]
        for entry in mapping(node, name) ?? [] {
            if let value = string(entry.value, "a value for '\(entry.key)'") { result[keyTransform(entry.key)] = value }
        }
        return result
    }

    private func readBodyJSON(_ node: YAMLNode) -> [(path: String, value: ConfigValue)] {
        (mapping(node, "body_json") ?? []).compactMap { entry in
            guard entry.key.hasPrefix("$") else {
                log.error("body_json keys are JSON paths starting with '$' (like $.user.role), got '\(entry.key)'", at: entry.keyLocation)
                return nil
            }
            guard case .scalar = entry.value.kind else {
                log.error("expected a scalar value for '\(entry.key)', got \(entry.value.shapeDescription)", at: entry.value.location)
                return nil
            }
            return (entry.key, entry.value.value)
        }
    }
}
