import Foundation

/// Route handlers (docs/configuration.md §9), each decoded once into its typed options.
extension ConfigBuilder {
    static var handlerNames: [String] { HandlerKind.allCases.map(\.rawValue) }

    /// The handler under route key `kind`. `proxy` is decoded in full but not served yet: the loader warns.
    func readHandler(_ kind: HandlerKind, _ node: YAMLNode, keyLocation: SourceLocation) -> HandlerConfig? {
        switch kind {
        case .static: return readStatic(node).map(HandlerConfig.static)
        case .respond: return readRespond(node).map { HandlerConfig.respond(RespondOptions(responses: $0)) }
        case .redirect: return readRedirect(node).map(HandlerConfig.redirect)
        case .proxy: return readProxy(node).map(HandlerConfig.proxy)
        case .websocket: return readWebSocket(node).map(HandlerConfig.websocket)
        case .sse: return readSSE(node).map(HandlerConfig.sse)
        case .publish: return string(node, "a channel name").map { HandlerConfig.publish(channel: $0) }
        case .openapi: return readOpenAPI(node).map(HandlerConfig.openapi)
        case .health:
            let healthy = bool(node)
            if healthy == false { log.error("health: expected true (remove the route to turn it off)", at: node.location) }
            return healthy == true ? .health : nil
        case .metrics:
            return choice(node, "metrics", options: ["prometheus"]).map { _ in .metrics }
        }
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

    /// One response, or a list of them.
    private func readRespond(_ node: YAMLNode) -> [StubSpec]? {
        guard case .list(let items) = node.kind else { return readResponse(node).map { [$0] } }
        if items.isEmpty { log.error("respond needs at least one response", at: node.location) }
        let responses = items.compactMap(readResponse)
        return responses.count == items.count && !items.isEmpty ? responses : nil
    }

    private func readResponse(_ node: YAMLNode) -> StubSpec? {
        guard let section = section(node, "respond", keys: ["status", "headers", "json", "body", "file", "template", "delay", "throttle", "fault"])
        else { return nil }
        requireAtMostOne(of: ["json", "body", "file"], in: section, "respond")
        let errorsBefore = log.errorCount
        var stub = StubSpec()
        if let value = section["status"], let status = status(value, in: 100...599) {
            // A 1xx is never the last answer to a request: the client would wait for another one.
            if status < 200 { log.error("respond status \(status) is informational (1xx); use 200-599", at: value.location) }
            stub.status = status
        }
        if let value = section["headers"] {
            stub.headers = (mapping(value, "headers") ?? []).compactMap { entry in
                string(entry.value, "a value for '\(entry.key)'").map { HeaderPair(name: entry.key, value: $0) }
            }
        }
        if let value = section["json"] {
            stub.body = .json(value.value)
        } else if let value = section["body"], let text = string(value) {
            stub.body = .text(text)
        } else if let value = section["file"], let file = path(value) {
            stub.body = .file(path: file, templated: section["template"].flatMap(bool) ?? false)
            config.files.append(file)
        }
        if section["template"] != nil, section["file"] == nil, let location = section.keyLocation("template") {
            log.error("'template' only applies to 'file' (json and body are always templates)", at: location)
        }
        if let value = section["delay"] { stub.delay = readDelay(value) }
        if let value = section["throttle"] { stub.bytesPerSecond = readThrottle(value) }
        if let value = section["fault"] { stub.fault = choice(value, "fault", among: Fault.allCases) }
        return log.errorCount == errorsBefore ? stub : nil
    }

    /// `150ms`, or `{min: 50ms, max: 300ms}`.
    private func readDelay(_ node: YAMLNode) -> StubSpec.Delay? {
        guard case .map = node.kind else { return duration(node).map { .fixed(Self.duration(seconds: $0)) } }
        guard let section = section(node, "delay", keys: ["min", "max"]) else { return nil }
        let low = required("min", in: section, "delay").flatMap(duration)
        let high = required("max", in: section, "delay").flatMap(duration)
        guard let low, let high else { return nil }
        return .between(min: Self.duration(seconds: min(low, high)), max: Self.duration(seconds: max(low, high)))
    }

    static func duration(seconds: Double) -> Duration {
        .nanoseconds(Int64((seconds * 1_000_000_000).rounded()))
    }

    /// A rate like `10KiB/s`, in bytes per second.
    private func readThrottle(_ node: YAMLNode) -> Int? {
        guard let text = node.text, text.hasSuffix("/s"), let rate = ConfigUnits.parseSize(String(text.dropLast(2))), rate > 0 else {
            log.error("expected a rate like 10KiB/s, got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return rate
    }

    // MARK: redirect, proxy, openapi

    /// `redirect: /new` or `{to, status}`.
    private func readRedirect(_ node: YAMLNode) -> RedirectOptions? {
        if case .scalar = node.kind { return string(node, "a target URL").map(RedirectOptions.init(to:)) }
        guard let section = section(node, "redirect", keys: ["to", "status"]),
              let to = required("to", in: section, "redirect").flatMap({ string($0) })
        else { return nil }
        var options = RedirectOptions(to: to)
        if let value = section["status"], let code = status(value, in: 100...599) {
            guard [301, 302, 303, 307, 308].contains(code) else {
                log.error("invalid status code \(code) for redirect (expected one of: 301, 302, 303, 307, 308)", at: value.location)
                return nil
            }
            options.status = code
        }
        return options
    }

    private func readProxy(_ node: YAMLNode) -> ProxyOptions? {
        guard let section = section(node, "proxy", keys: ["to", "balance", "health", "strip_prefix", "headers", "timeout", "ca"]),
              let toNode = required("to", in: section, "proxy")
        else { return nil }
        var options = ProxyOptions(upstreams: [])
        for item in stringList(toNode, "a list of upstream URLs") ?? [] {
            let url = URL(string: item.text)
            if url?.host == nil || !["http", "https"].contains(url?.scheme ?? "") {
                log.error("invalid upstream '\(item.text)' (expected a URL like http://127.0.0.1:9001)", at: item.location)
            } else {
                options.upstreams.append(item.text)
            }
        }
        if options.upstreams.isEmpty, case .list(let items) = toNode.kind, items.isEmpty {
            log.error("proxy needs at least one upstream in 'to'", at: toNode.location)
        }
        if let value = section["balance"], let balance = choice(value, "balance", among: ProxyOptions.Balance.allCases) { options.balance = balance }
        if let value = section["health"],
           let health = self.section(value, "proxy health", keys: ["path", "interval", "timeout", "rise", "fall", "status"]) {
            var check = ProxyOptions.Health()
            if let path = health["path"], let text = urlPath(path) { check.path = text }
            if let interval = health["interval"].flatMap(duration) { check.interval = max(interval, 0.01) }
            if let timeout = health["timeout"].flatMap(duration) { check.timeout = max(timeout, 0.01) }
            if let rise = health["rise"].flatMap({ integer($0, "checks in a row", in: 1...100) }) { check.rise = rise }
            if let fall = health["fall"].flatMap({ integer($0, "checks in a row", in: 1...100) }) { check.fall = fall }
            if let status = health["status"].flatMap(passingStatuses) { check.status = status }
            options.health = check
        }
        if let value = section["strip_prefix"], let strip = bool(value) { options.stripPrefix = strip }
        if let value = section["headers"], let edits = self.section(value, "headers", keys: ["set", "add", "remove"]) {
            options.headers = decodeHeaderEdits(edits)
        }
        if let value = section["timeout"], let timeout = duration(value) { options.timeout = timeout }
        if let value = section["ca"], let ca = path(value) {
            options.ca = ca
            config.files.append(ca)
            if !options.upstreams.contains(where: { $0.lowercased().hasPrefix("https://") }) {
                log.warning("proxy 'ca' is used for https:// upstreams only, and this route has none", at: value.location)
            }
        }
        return options
    }

    /// `health.status`: `200`, a class such as `2xx`, or a list of them.
    private func passingStatuses(_ node: YAMLNode) -> [ClosedRange<Int>]? {
        let what = "a status (200), a class of them (2xx) or a list of those"
        var ranges: [ClosedRange<Int>] = []
        for item in stringList(node, what) ?? [] {
            let text = item.text.lowercased()
            if let code = Int(text), (100...599).contains(code) {
                ranges.append(code...code)
            } else if text.count == 3, text.hasSuffix("xx"), let digit = Int(text.prefix(1)), (1...5).contains(digit) {
                ranges.append(digit * 100...digit * 100 + 99)
            } else {
                log.error("expected \(what), got '\(item.text)'", at: item.location)
                return nil
            }
        }
        return ranges.isEmpty ? nil : ranges
    }

    private func readOpenAPI(_ node: YAMLNode) -> OpenAPIOptions? {
        guard let section = section(node, "openapi", keys: ["spec", "validate"]),
              let spec = required("spec", in: section, "openapi").flatMap(path)
        else { return nil }
        var options = OpenAPIOptions(spec: spec)
        config.files.append(spec)
        if let value = section["validate"], let validate = bool(value) { options.validate = validate }
        return options
    }

    private func urlPath(_ node: YAMLNode) -> String? {
        guard let text = string(node, "a URL path") else { return nil }
        guard text.hasPrefix("/") else {
            log.error("expected a URL path starting with '/', got '\(text)'", at: node.location)
            return nil
        }
        return text
    }

    // MARK: websocket, sse

    /// `echo`, or a mapping with one of echo/broadcast/subscribe.
    private func readWebSocket(_ node: YAMLNode) -> WebSocketConfig? {
        if case .scalar = node.kind { return choice(node, "websocket", options: ["echo"]).map { _ in WebSocketConfig() } }
        guard let section = section(node, "websocket", keys: [
            "echo", "broadcast", "subscribe", "max_message", "ping_interval", "idle_timeout", "compression", "subprotocols", "origins",
        ]) else { return nil }
        requireOne(of: ["echo", "broadcast", "subscribe"], in: section, "websocket")
        let errorsBefore = log.errorCount
        var options = WebSocketConfig()
        if let value = section["echo"], bool(value) == false {
            log.error("websocket echo: expected true (or choose broadcast or subscribe)", at: value.location)
        }
        if let channel = section["broadcast"].flatMap({ string($0, "a channel name") }) { options.mode = .broadcast(channel) }
        if let channel = section["subscribe"].flatMap({ string($0, "a channel name") }) { options.mode = .subscribe(channel) }
        if let value = section["max_message"], let size = size(value) { options.maxMessage = size }
        if let value = section["ping_interval"], let seconds = duration(value) { options.pingInterval = seconds }
        if let value = section["idle_timeout"], let seconds = duration(value) { options.idleTimeout = seconds }
        if let value = section["compression"], let on = bool(value) { options.compression = on }
        if let value = section["subprotocols"] { options.subprotocols = (stringList(value, "a list of subprotocols") ?? []).map(\.text) }
        if let value = section["origins"] { options.origins = (stringList(value, "a list of origins") ?? []).map { $0.text.lowercased() } }
        return log.errorCount == errorsBefore ? options : nil
    }

    private func readSSE(_ node: YAMLNode) -> SSEConfig? {
        guard let section = section(node, "sse", keys: ["subscribe", "ticker", "keepalive", "retry", "replay"]) else { return nil }
        requireOne(of: ["subscribe", "ticker"], in: section, "sse")
        let errorsBefore = log.errorCount
        var source: SSEConfig.Source?
        if let channel = section["subscribe"].flatMap({ string($0, "a channel name") }) { source = .subscribe(channel) }
        if let value = section["ticker"] { source = readTicker(value) }
        var options = SSEConfig(source: source ?? .subscribe(""))
        if let value = section["keepalive"], let seconds = duration(value) { options.keepalive = seconds == 0 ? nil : Self.duration(seconds: seconds) }
        if let value = section["retry"], let seconds = duration(value) { options.retry = Self.duration(seconds: seconds) }
        if let value = section["replay"], let replay = integer(value, "a number of events", in: 0...Int.max) { options.replay = replay }
        return source != nil && log.errorCount == errorsBefore ? options : nil
    }

    private func readTicker(_ node: YAMLNode) -> SSEConfig.Source? {
        guard let section = section(node, "ticker", keys: ["every", "data", "event"]),
              let every = required("every", in: section, "ticker").flatMap(duration)
        else { return nil }
        guard every > 0 else {
            log.error("ticker 'every' must be more than 0", at: section["every"]?.location ?? node.location)
            return nil
        }
        let data = section["data"].flatMap { string($0) } ?? "{{now}}"
        let event = section["event"].flatMap { string($0) }
        if let event, event.contains(where: \.isNewline), let location = section["event"]?.location {
            log.error("ticker 'event' must be one line", at: location)
            return nil
        }
        return .ticker(every: Self.duration(seconds: every), data: data, event: event)
    }
}
