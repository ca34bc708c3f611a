import Foundation

extension ConfigBuilder {
    /// Handlers this release serves (the others are validated and answered 501, with a warning).
    static let implementedHandlers: Set = ["static", "respond", "redirect", "health", "sse", "publish", "openapi", "metrics", "websocket"]
    static let handlerNames = ["static", "respond", "redirect", "proxy", "websocket", "sse", "publish", "openapi", "health", "metrics"]

    /// The handler under route key `name`; every handler but `static` is kept as options and warned about.
    func readHandler(_ name: String, _ node: YAMLNode, keyLocation: SourceLocation) -> HandlerConfig? {
        if name == "static" { return readStatic(node).map(HandlerConfig.static) }
        if !Self.implementedHandlers.contains(name) { log.warning("handler '\(name)' is not supported yet", at: keyLocation) }
        let options: ConfigValue?
        switch name {
        case "respond": options = readRespond(node)
        case "redirect": options = readRedirect(node)
        case "proxy": options = readProxy(node)
        case "websocket": options = readWebSocket(node)
        case "sse": options = readSSE(node)
        case "publish": options = string(node, "a channel name").map(ConfigValue.string)
        case "openapi": options = readOpenAPI(node)
        case "health":
            let healthy = bool(node)
            if healthy == false { log.error("health: expected true (remove the route to turn it off)", at: node.location) }
            options = healthy == true ? .bool(true) : nil
        default: // metrics
            options = choice(node, "metrics", options: ["prometheus"]).map(ConfigValue.string)
        }
        return options.map { .other(name: name, options: $0) }
    }

    // MARK: static

    static let staticKeys = ["root", "index", "listing", "fallback", "precompressed", "cache_control", "dotfiles", "follow_symlinks"]

    private func readStatic(_ node: YAMLNode) -> StaticConfig? {
        if case .scalar = node.kind { return staticRoot(node).map(StaticConfig.init(root:)) }
        guard let section = section(node, "static", keys: Self.staticKeys),
              let rootNode = required("root", in: section, "static")
        else { return nil }
        let root = staticRoot(rootNode)
        var config = StaticConfig(root: root ?? "")
        if let value = section["index"], let names = stringList(value, "a list of index file names") { config.index = names.map(\.text) }
        if let value = section["listing"], let listing = bool(value) { config.listing = listing }
        if let value = section["fallback"], let fallback = string(value, "a URL path like /index.html") {
            if fallback.hasPrefix("/") {
                config.fallback = fallback
            } else {
                log.error("fallback must be a URL path starting with '/', got '\(fallback)'", at: value.location)
            }
        }
        if let value = section["precompressed"], let items = list(value, "a list of encodings (br, zstd, gzip)") {
            let encodings = items.compactMap { choice($0, "precompressed", among: StaticConfig.Encoding.allCases) }
            if encodings.count == items.count { config.precompressed = encodings }
        }
        if let value = section["cache_control"], let cacheControl = string(value, "a Cache-Control value") { config.cacheControl = cacheControl }
        if let value = section["dotfiles"], let dotfiles = choice(value, "dotfiles", among: [StaticConfig.Dotfiles.deny, .allow]) { config.dotfiles = dotfiles }
        if let value = section["follow_symlinks"], let symlinks = choice(value, "follow_symlinks", among: [StaticConfig.Symlinks.inside, .always, .never]) {
            config.followSymlinks = symlinks
        }
        return root == nil ? nil : config
    }

    /// The resolved root, which must be an existing directory.
    private func staticRoot(_ node: YAMLNode) -> String? {
        guard let written = string(node, "a directory"), let root = path(node) else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else {
            log.error("static root '\(written)' does not exist", at: node.location)
            return nil
        }
        guard isDirectory.boolValue else {
            log.error("static root '\(written)' is not a directory", at: node.location)
            return nil
        }
        return root
    }

    // MARK: respond

    private func readRespond(_ node: YAMLNode) -> ConfigValue? {
        guard case .list(let items) = node.kind else { return readResponse(node) }
        if items.isEmpty { log.error("respond needs at least one response", at: node.location) }
        let responses = items.compactMap(readResponse)
        return responses.count == items.count ? .list(responses) : nil
    }

    private func readResponse(_ node: YAMLNode) -> ConfigValue? {
        let shapes: [(key: String, shape: OptionShape)] = [
            ("status", .status(100...599)), ("headers", .stringMap), ("json", .anyValue), ("body", .string),
            ("file", .path), ("template", .bool), ("delay", .custom(checkDelay)),
            ("throttle", .custom(checkThrottle)), ("fault", .choice(["reset", "empty", "malformed"])),
        ]
        guard let section = checkOptions(node, "respond", shapes) else { return nil }
        requireAtMostOne(of: ["json", "body", "file"], in: section, "respond")
        return options(node, resolvingPaths: ["file"])
    }

    /// `150ms`, or `{min: 50ms, max: 300ms}`.
    private func checkDelay(_ node: YAMLNode) {
        guard case .map = node.kind else {
            _ = duration(node)
            return
        }
        if let section = checkOptions(node, "delay", [("min", .duration), ("max", .duration)]) {
            _ = required("min", in: section, "delay")
            _ = required("max", in: section, "delay")
        }
    }

    /// A rate like `10KiB/s`.
    private func checkThrottle(_ node: YAMLNode) {
        guard let text = node.text, text.hasSuffix("/s"), ConfigUnits.parseSize(String(text.dropLast(2))) != nil else {
            log.error("expected a rate like 10KiB/s, got \(node.shapeDescription)", at: node.location)
            return
        }
    }

    // MARK: redirect, proxy, openapi

    /// Normalised to `{to, status}`.
    private func readRedirect(_ node: YAMLNode) -> ConfigValue? {
        if case .scalar = node.kind {
            return string(node, "a target URL").map { .map([(key: "to", value: .string($0)), (key: "status", value: .int(302))]) }
        }
        guard let section = checkOptions(node, "redirect", [("to", .string), ("status", .statusIn([301, 302, 303, 307, 308]))]),
              required("to", in: section, "redirect") != nil
        else { return nil }
        if section["status"] == nil, case .map(let pairs) = node.value {
            return .map(pairs + [(key: "status", value: .int(302))])
        }
        return node.value
    }

    private func readProxy(_ node: YAMLNode) -> ConfigValue? {
        let shapes: [(key: String, shape: OptionShape)] = [
            ("to", .custom(checkUpstreams)), ("balance", .choice(["round_robin", "least_conn", "random", "ip_hash"])),
            ("health", .custom { [self] in
                checkOptions($0, "proxy health", [("path", .custom(checkURLPath)), ("interval", .duration), ("timeout", .duration)])
            }),
            ("strip_prefix", .bool), ("headers", .custom(checkHeaderEdits)), ("timeout", .duration),
        ]
        guard let section = checkOptions(node, "proxy", shapes), required("to", in: section, "proxy") != nil else { return nil }
        return node.value
    }

    private func readOpenAPI(_ node: YAMLNode) -> ConfigValue? {
        guard let section = checkOptions(node, "openapi", [("spec", .path), ("validate", .bool)]),
              required("spec", in: section, "openapi") != nil
        else { return nil }
        return options(node, resolvingPaths: ["spec"])
    }

    private func checkUpstreams(_ node: YAMLNode) {
        for item in stringList(node, "a list of upstream URLs") ?? [] {
            let url = URL(string: item.text)
            if url?.host == nil || !["http", "https"].contains(url?.scheme ?? "") {
                log.error("invalid upstream '\(item.text)' (expected a URL like http://127.0.0.1:9001)", at: item.location)
            }
        }
    }

    private func checkURLPath(_ node: YAMLNode) {
        if let text = string(node, "a URL path"), !text.hasPrefix("/") {
            log.error("expected a URL path starting with '/', got '\(text)'", at: node.location)
        }
    }

    /// `{set: {...}, add: {...}, remove: [...]}`.
    func checkHeaderEdits(_ node: YAMLNode) {
        checkOptions(node, "headers", [("set", .stringMap), ("add", .stringMap), ("remove", .stringList("a list of header names"))])
    }

    // MARK: websocket, sse

    /// `echo`, or a mapping with one of echo/broadcast/subscribe; normalised to a mapping.
    private func readWebSocket(_ node: YAMLNode) -> ConfigValue? {
        if case .scalar = node.kind {
            return choice(node, "websocket", options: ["echo"]).map { _ in .map([(key: "echo", value: .bool(true))]) }
        }
        let shapes: [(key: String, shape: OptionShape)] = [
            ("echo", .bool), ("broadcast", .string), ("subscribe", .string), ("max_message", .size),
            ("ping_interval", .duration), ("idle_timeout", .duration), ("compression", .bool),
            ("subprotocols", .stringList("a list of subprotocols")), ("origins", .stringList("a list of origins")),
        ]
        guard let section = checkOptions(node, "websocket", shapes) else { return nil }
        requireOne(of: ["echo", "broadcast", "subscribe"], in: section, "websocket")
        return node.value
    }

    private func readSSE(_ node: YAMLNode) -> ConfigValue? {
        let ticker = OptionShape.custom { [self] in
            if let section = checkOptions($0, "ticker", [("every", .duration), ("data", .string), ("event", .string)]) {
                _ = required("every", in: section, "ticker")
            }
        }
        let shapes: [(key: String, shape: OptionShape)] = [
            ("subscribe", .string), ("ticker", ticker), ("keepalive", .duration), ("retry", .duration),
            ("replay", .count(0...Int.max)),
        ]
        guard let section = checkOptions(node, "sse", shapes) else { return nil }
        requireOne(of: ["subscribe", "ticker"], in: section, "sse")
        return node.value
    }
}
