import Foundation

/// Middleware lists and named stacks (docs/configuration.md, "Middleware"). Each built-in item is
/// decoded once, here, into its typed options: decoding is the validation.
extension ConfigBuilder {
    private static var middlewareNames: [String] { MiddlewareKind.allCases.map(\.rawValue) }

    /// Top-level `middleware:` — named stacks.
    func readMiddlewareStacks(_ node: YAMLNode) {
        for entry in mapping(node, "middleware") ?? [] {
            if let previous = stackLocations[entry.key] {
                log.error("middleware stack '\(entry.key)' is already defined at \(previous)", at: entry.keyLocation)
                continue
            }
            if MiddlewareKind(rawValue: entry.key) != nil {
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
            if let kind = MiddlewareKind(rawValue: name) {
                guard kind.worksWithoutOptions else {
                    log.error("middleware '\(name)' needs options, e.g. {\(name): {...}}", at: node.location)
                    return nil
                }
                return decodeMiddleware(kind, options: nil, at: node.location).map { MiddlewareItem(kind: .builtin($0), location: node.location) }
            }
            stackReferences.append((name, node.location))
            return MiddlewareItem(kind: .stack(name), location: node.location)
        case .map(let pairs) where pairs.count == 1:
            let (key, options) = pairs[0]
            guard let name = key.text, let kind = MiddlewareKind(rawValue: name) else {
                let hint = key.text.map { Suggestion.hint(for: $0, among: Self.middlewareNames) } ?? ""
                log.error("unknown middleware \(key.shapeDescription)\(hint)", at: key.location)
                return nil
            }
            return decodeMiddleware(kind, options: options, at: node.location).map { MiddlewareItem(kind: .builtin($0), location: node.location) }
        default:
            log.error("expected a middleware stack name or a one-key mapping like {cors: {...}}, got \(node.shapeDescription)", at: node.location)
            return nil
        }
    }

    /// The typed options of one middleware; nil (with diagnostics logged) when they are wrong.
    /// `node` is nil for a bare name; a null value (`{request_id: }`) counts as no options too.
    private func decodeMiddleware(_ kind: MiddlewareKind, options node: YAMLNode?, at location: SourceLocation) -> MiddlewareSpec? {
        let node = node.flatMap { $0.isNull ? nil : $0 }
        guard let node else {
            switch kind {
            case .requestID: return .requestID(RequestIDOptions())
            case .compress: return .compress(CompressOptions())
            default:
                log.error("middleware '\(kind.rawValue)' needs options", at: location)
                return nil
            }
        }
        let errorsBefore = log.errorCount
        let spec: MiddlewareSpec?
        switch kind {
        case .headers: spec = decodeHeaders(node).map(MiddlewareSpec.headers)
        case .cors: spec = decodeCORS(node).map(MiddlewareSpec.cors)
        case .basicAuth: spec = decodeBasicAuth(node).map(MiddlewareSpec.basicAuth)
        case .ipFilter: spec = decodeIPFilter(node).map(MiddlewareSpec.ipFilter)
        case .rateLimit: spec = decodeRateLimit(node).map(MiddlewareSpec.rateLimit)
        case .compress: spec = decodeCompress(node).map(MiddlewareSpec.compress)
        case .bodyLimit: spec = size(node).map(MiddlewareSpec.bodyLimit)
        case .requestID: spec = decodeRequestID(node).map(MiddlewareSpec.requestID)
        case .rewrite: spec = decodeRewrite(node).map(MiddlewareSpec.rewrite)
        }
        // A half-understood item is never built: a security middleware must not run with defaults
        // where the file said something else.
        return log.errorCount == errorsBefore ? spec : nil
    }

    // MARK: The items

    private func decodeHeaders(_ node: YAMLNode) -> HeadersOptions? {
        guard let section = section(node, "headers", keys: ["set", "add", "remove", "request"]) else { return nil }
        var options = HeadersOptions()
        options.response = decodeHeaderEdits(section)
        if let request = section["request"], let requestSection = self.section(request, "headers.request", keys: ["set", "add", "remove"]) {
            options.request = decodeHeaderEdits(requestSection)
        }
        return options
    }

    /// `set`, `add` and `remove` of a section whose keys were already checked.
    func decodeHeaderEdits(_ section: Section) -> HeaderEdits {
        var edits = HeaderEdits()
        if let value = section["set"] { edits.set = headerPairs(value, "set") }
        if let value = section["add"] { edits.add = headerPairs(value, "add") }
        if let value = section["remove"] {
            edits.remove = (stringList(value, "a list of header names") ?? []).compactMap { headerName($0.text, at: $0.location) }
        }
        return edits
    }

    /// A mapping of header names to values, in file order; names must be tokens and values free of CR/LF/NUL.
    private func headerPairs(_ node: YAMLNode, _ name: String) -> [HeaderPair] {
        (mapping(node, name) ?? []).compactMap { entry in
            guard let fieldName = headerName(entry.key, at: entry.keyLocation),
                  let value = string(entry.value, "a value for '\(entry.key)'") else { return nil }
            guard !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                log.error("header value for '\(entry.key)' contains a line break or NUL", at: entry.value.location)
                return nil
            }
            return HeaderPair(name: fieldName, value: value)
        }
    }

    private func headerName(_ text: String, at location: SourceLocation) -> String? {
        guard NetworkSyntax.isToken(text) else {
            log.error("invalid header name '\(text)'", at: location)
            return nil
        }
        return text
    }

    private func decodeCORS(_ node: YAMLNode) -> CORSOptions? {
        guard let section = section(node, "cors", keys: ["origins", "methods", "headers", "expose", "credentials", "max_age"]) else { return nil }
        var options = CORSOptions()
        if let value = section["origins"], let origins = stringList(value, "a list of origins") {
            options.origins = origins.compactMap { origin in
                if origin.text == "*" || Self.isOrigin(origin.text) { return origin.text }
                log.error("invalid origin '\(origin.text)' (expected scheme://host[:port] like https://example.com, or *)", at: origin.location)
                return nil
            }
        }
        if let value = section["methods"], let methods = stringList(value, "a list of methods") {
            options.methods = methods.compactMap { method in
                guard NetworkSyntax.isToken(method.text) else {
                    log.error("invalid HTTP method '\(method.text)'", at: method.location)
                    return nil
                }
                return method.text.uppercased()
            }
        }
        if let value = section["headers"] {
            options.headers = (stringList(value, "a list of header names") ?? []).compactMap { headerName($0.text, at: $0.location) }
        }
        if let value = section["expose"] {
            options.expose = (stringList(value, "a list of header names") ?? []).compactMap { headerName($0.text, at: $0.location) }
        }
        if let value = section["credentials"], let credentials = bool(value) { options.credentials = credentials }
        if let value = section["max_age"], let seconds = duration(value) { options.maxAge = Int(seconds.rounded()) }
        if options.credentials, options.origins.contains("*") {
            log.error("cors cannot allow origin '*' with credentials: true (list the origins)",
                      at: section.keyLocation("credentials") ?? section.location)
        }
        return options
    }

    /// `scheme://host[:port]`, nothing more (an origin has no path, RFC 6454).
    private static func isOrigin(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, url.host != nil else { return false }
        return ["http", "https"].contains(scheme.lowercased()) && url.path.isEmpty && url.query == nil && url.user == nil
    }

    private func decodeBasicAuth(_ node: YAMLNode) -> BasicAuthOptions? {
        guard let section = section(node, "basic_auth", keys: ["realm", "users", "htpasswd"]) else { return nil }
        if section["users"] == nil && section["htpasswd"] == nil {
            log.error("basic_auth needs one of: users, htpasswd", at: section.location)
        }
        var options = BasicAuthOptions()
        if let value = section["realm"], let realm = string(value, "a realm name") {
            if realm.contains("\"") || realm.contains("\\") || realm.unicodeScalars.contains(where: { $0.value < 0x20 }) {
                log.error("basic_auth realm may not contain quotes, backslashes or control characters", at: value.location)
            }
            options.realm = realm
        }
        if let value = section["users"] {
            for entry in mapping(value, "users") ?? [] {
                guard let hash = string(entry.value, "a password hash for '\(entry.key)'") else { continue }
                if checkPasswordHash(hash, user: entry.key, at: entry.value.location) { options.users[entry.key] = hash }
            }
        }
        if let value = section["htpasswd"], let file = path(value) {
            options.htpasswd = file
            readHtpasswd(file, at: value.location, into: &options.users)
        }
        return options
    }

    /// An htpasswd file: `user:hash` per line, `#` comments and blank lines ignored. Every line
    /// that cannot be enforced is an error at its own position.
    private func readHtpasswd(_ file: String, at location: SourceLocation, into users: inout [String: String]) {
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            log.error("cannot read htpasswd file '\(file)'", at: location)
            return
        }
        config.files.append(file)
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let lineLocation = SourceLocation(file: file, line: index + 1, column: 1)
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                log.error("expected 'user:hash' in htpasswd file", at: lineLocation)
                continue
            }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            if users[user] != nil {
                log.error("user '\(user)' is defined twice", at: lineLocation)
            } else if checkPasswordHash(hash, user: user, at: lineLocation) {
                users[user] = hash
            }
        }
    }

    /// Only hashes the server can verify are accepted: anything else would lock everyone out, or
    /// (worse) be mistaken for a plain password.
    private func checkPasswordHash(_ hash: String, user: String, at location: SourceLocation) -> Bool {
        let supported = ["$2a$", "$2b$", "$2y$", "$6$"].contains { hash.hasPrefix($0) }
        if !supported {
            log.error("unsupported password hash for user '\(user)' (expected bcrypt $2a$/$2b$/$2y$ or sha512-crypt $6$; make one with `pagi-serve hash-password`)",
                      at: location)
        }
        return supported
    }

    private func decodeIPFilter(_ node: YAMLNode) -> IPFilterOptions? {
        guard let section = section(node, "ip_filter", keys: ["allow", "deny"]) else { return nil }
        if section.entries.isEmpty { log.error("ip_filter needs 'allow' or 'deny'", at: node.location) }
        var options = IPFilterOptions()
        if let value = section["allow"] { options.allow = cidrs(value) }
        if let value = section["deny"] { options.deny = cidrs(value) }
        return options
    }

    func cidrs(_ node: YAMLNode) -> [CIDR] {
        (stringList(node, "a list of CIDRs") ?? []).compactMap { item in
            let network = NetworkSyntax.cidr(item.text)
            if network == nil { log.error("invalid CIDR '\(item.text)' (expected e.g. 10.0.0.0/8 or fd00::/8)", at: item.location) }
            return network
        }
    }

    private func decodeRateLimit(_ node: YAMLNode) -> RateLimitOptions? {
        guard let section = section(node, "rate_limit", keys: ["rate", "burst", "key"]) else { return nil }
        let perSecond = required("rate", in: section, "rate_limit").flatMap(rate)
        // Without a burst, a client may spend one second's worth at once (at least one request).
        var options = RateLimitOptions(perSecond: perSecond ?? 1, burst: max(1, Int((perSecond ?? 1).rounded(.up))))
        if let value = section["burst"], let burst = integer(value, "a number of requests", in: 1...1_000_000) { options.burst = burst }
        if let value = section["key"], let key = string(value, "client_ip or header:NAME") {
            if key == "client_ip" {
                options.key = .clientIP
            } else if key.hasPrefix("header:"), let name = headerName(String(key.dropFirst(7)), at: value.location) {
                options.key = .header(name.lowercased())
            } else {
                log.error("invalid rate_limit key '\(key)' (expected client_ip or header:NAME)", at: value.location)
            }
        }
        return perSecond == nil ? nil : options
    }

    /// `10/s`, `100/m`, `1000/h` → per second.
    private func rate(_ node: YAMLNode) -> Double? {
        let parts = node.text?.split(separator: "/") ?? []
        let unit: Double? = parts.count == 2 ? ["s": 1, "m": 60, "h": 3600][String(parts[1])] : nil
        // At most a billion a second: beyond it nothing is limited, and the burst must fit an Int.
        guard let unit, let count = Double(parts[0]), count > 0, count / unit <= 1_000_000_000 else {
            log.error("expected a rate like 10/s, 100/m or 1000/h (at most 1000000000/s), got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return count / unit
    }

    private func decodeCompress(_ node: YAMLNode) -> CompressOptions? {
        guard let section = section(node, "compress", keys: ["algorithms", "min_size", "level", "types"]) else { return nil }
        var options = CompressOptions()
        if let value = section["algorithms"], let items = list(value, "a list of algorithms", allowSingle: true) {
            let algorithms = items.compactMap { choice($0, "algorithm", among: CompressOptions.Algorithm.allCases) }
            for item in items where ["br", "zstd"].contains(item.text ?? "") {
                log.warning("compress: '\(item.text ?? "")' has no on-the-fly encoder in this release and is skipped (serve precompressed files with static instead)",
                            at: item.location)
            }
            options.algorithms = algorithms.filter { $0 == .gzip || $0 == .deflate }
            if options.algorithms.isEmpty, algorithms.count == items.count {
                log.error("compress needs gzip or deflate among its algorithms", at: value.location)
            }
        }
        if let value = section["min_size"], let minSize = size(value) { options.minSize = minSize }
        if let value = section["level"], let level = integer(value, "a compression level", in: 1...9) { options.level = level }
        if let value = section["types"], let types = stringList(value, "a list of media types") {
            options.types = types.compactMap { type in
                let parts = type.text.lowercased().split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count == 2, parts.allSatisfy({ $0 == "*" || NetworkSyntax.isToken(String($0)) }) else {
                    log.error("invalid media type '\(type.text)' (expected e.g. text/html or text/*)", at: type.location)
                    return nil
                }
                return type.text.lowercased()
            }
        }
        return options
    }

    private func decodeRequestID(_ node: YAMLNode) -> RequestIDOptions? {
        guard let section = section(node, "request_id", keys: ["header"]) else { return nil }
        var options = RequestIDOptions()
        if let value = section["header"], let text = string(value, "a header name"), let name = headerName(text, at: value.location) {
            options.header = name
        }
        return options
    }

    private func decodeRewrite(_ node: YAMLNode) -> RewriteOptions? {
        guard let section = section(node, "rewrite", keys: ["from", "to"]) else { return nil }
        let from = required("from", in: section, "rewrite").flatMap { node in
            string(node, "a regular expression").map { (text: $0, location: node.location) }
        }
        let to = required("to", in: section, "rewrite").flatMap { node in string(node, "a path").map { (text: $0, location: node.location) } }
        var captureCount: Int?
        if let from {
            do {
                captureCount = try NSRegularExpression(pattern: from.text).numberOfCaptureGroups
            } catch {
                log.error("invalid regular expression '\(from.text)'", at: from.location)
            }
        }
        if let to, !to.text.hasPrefix("/"), !to.text.hasPrefix("$") {
            log.error("rewrite target must be a path starting with '/', got '\(to.text)'", at: to.location)
        }
        if let to, let captureCount {
            for reference in Self.captureReferences(in: to.text) where reference > captureCount {
                log.error("rewrite target uses $\(reference) but the expression has \(captureCount) capture group(s)", at: to.location)
            }
        }
        guard let from, let to, captureCount != nil else { return nil }
        return RewriteOptions(from: from.text, to: to.text)
    }

    /// The numbers of `$1`…`$9` references in a replacement.
    private static func captureReferences(in template: String) -> [Int] {
        var references: [Int] = []
        var previous: Character?
        for character in template {
            if previous == "$", let digit = character.wholeNumberValue { references.append(digit) }
            previous = character
        }
        return references
    }

    // MARK: Stacks

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
