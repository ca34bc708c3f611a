import Foundation
extension ConfigBuilder {
    static let serverKeys = [
        "listen", "workers", "threads", "max_requests", "log_level", "access_log", "timeouts", "limits",
        "trusted_proxies", "http2", "pid_file", "admin", "middleware", "backlog", "server_header", "user", "group",
    ]

    /// `user` and `group`, looked up in the system's databases now so that a name that does not
    /// exist is reported with its position (docs/operations.md, *Privileges*).
    private func readRunAs(_ section: Section, into server: inout ServerConfig) {
        let group = section["group"].flatMap { string($0, "a group name or id") }
        guard let node = section["user"] else {
            if let value = section["group"] { log.error("'group' needs 'user': the user the workers run as", at: value.location) }
            return
        }
        guard let user = string(node, "a user name or id") else { return }
        switch RunAs.resolve(user: user, group: group) {
        case .success(var runAs):
            runAs.location = node.location
            server.runAs = runAs
        case .failure(let error):
            log.error(error.description, at: error.key == .group ? (section["group"]?.location ?? node.location) : node.location)
        }
    }

    func readServer(_ node: YAMLNode) {
        guard let section = section(node, "server", keys: Self.serverKeys) else { return }
        var server = ServerConfig()
        if let value = section["listen"], let listeners = readListeners(value) { server.listen = listeners }
        if let value = section["workers"], let workers = integerOrAuto(value, "a number of worker processes") {
            server.workers = workers
            // Warned about once the routes are known (`checkChannelsAcrossWorkers`).
            if workers != 1 { severalWorkersLocation = value.location }
        }
        if let value = section["threads"], let threads = integerOrAuto(value, "a number of threads") { server.threads = threads }
        if let value = section["max_requests"], let maxRequests = integer(value, "a number of requests", in: 0...Int.max) {
            server.maxRequests = maxRequests
        }
        if let value = section["log_level"], let level = choice(value, "log_level", among: LogLevel.allCases) { server.logLevel = level }
        if let value = section["access_log"] { readAccessLog(value, into: &server.accessLog) }
        if let value = section["timeouts"] { readTimeouts(value, into: &server.timeouts) }
        if let value = section["limits"] { readLimits(value, into: &server.limits) }
        if let value = section["trusted_proxies"] { server.trustedProxies = cidrs(value) }
        if let value = section["middleware"] { server.middleware = readMiddlewareList(value) }
        if let value = section["http2"], let http2 = bool(value) {
            server.http2 = http2
        }
        if let value = section["pid_file"], let path = path(value) { server.pidFile = path }
        if let value = section["backlog"], let backlog = integer(value, "a listen backlog", in: 1...65535) { server.backlog = backlog }
        if let value = section["server_header"], let send = bool(value) { server.serverHeader = send }
        readRunAs(section, into: &server)
        if let value = section["admin"], let admin = self.section(value, "admin", keys: ["listen"]) {
            if let listen = required("listen", in: admin, "admin"), let text = string(listen, "an address") {
                server.adminListen = listenConfig(text, at: listen.location)
            }
        }
        config.server = server
    }

    /// `listen:` — a list (or one item) of address strings or `{address, tls, http2, proxy_protocol}`.
    private func readListeners(_ node: YAMLNode) -> [ListenConfig]? {
        guard let items = list(node, "a list of listen addresses", allowSingle: true) else { return nil }
        if items.isEmpty {
            log.error("'listen' needs at least one address", at: node.location)
            return nil
        }
        let listeners = items.compactMap(readListener)
        return listeners.count == items.count ? listeners : nil
    }

    private func readListener(_ node: YAMLNode) -> ListenConfig? {
        guard case .map = node.kind else {
            guard let text = string(node, "a listen address") else { return nil }
            return listenConfig(text, at: node.location)
        }
        guard let section = section(node, "listen item", keys: ["address", "tls", "http2", "proxy_protocol", "mode", "owner"]),
              let addressNode = required("address", in: section, "listen item"),
              let text = string(addressNode, "a listen address"),
              var listener = listenConfig(text, at: addressNode.location)
        else { return nil }
        listener.location = node.location
        if let value = section["tls"] {
            if case .map = value.kind {
                listener.tls = true
                listener.tlsSettings = readTLS(value, onListener: true)
            } else if let tls = bool(value) {
                listener.tls = tls
            }
        }
        if let value = section["http2"], let http2 = bool(value) {
            listener.http2 = http2
        }
        if let value = section["mode"], let text = string(value, "octal permissions such as \"0660\"") {
            if case .unix = listener.address, let mode = UInt16(text, radix: 8), mode <= 0o777 {
                listener.socketMode = mode
            } else if case .unix = listener.address {
                log.error("'mode' takes octal permissions such as \"0660\", got '\(text)'", at: value.location)
            } else {
                log.error("'mode' applies to unix: sockets only", at: value.location)
            }
        }
        if let value = section["owner"], let text = string(value, "a user, or user:group") {
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if case .tcp = listener.address {
                log.error("'owner' applies to unix: sockets only", at: value.location)
            } else {
                switch RunAs.resolve(user: parts[0], group: parts.count > 1 ? parts[1] : nil) {
                case .success(let owner): listener.socketOwner = owner
                case .failure(let error): log.error("owner: \(error)", at: value.location)
                }
            }
        }
        if let value = section["proxy_protocol"], let proxyProtocol = bool(value) {
            listener.proxyProtocol = proxyProtocol
            if proxyProtocol { log.notSupportedYet("proxy_protocol", at: value.location) }
        }
        return listener
    }

    private func listenConfig(_ text: String, at location: SourceLocation) -> ListenConfig? {
        switch NetworkSyntax.listenAddress(text) {
        case .success(.unix(let path)):
            // Relative to the file that names it, like every path; sun_path holds 107 bytes and a NUL.
            let absolute = Self.resolve(path, relativeTo: location.file)
            guard absolute.utf8.count <= 107, !absolute.contains(";"), !absolute.contains("|") else {
                log.error("unix socket path '\(absolute)' is too long (at most 107 bytes) or holds ';' or '|'", at: location)
                return nil
            }
            return ListenConfig(address: .unix(path: absolute), location: location)
        case .success(let address):
            return ListenConfig(address: address, location: location)
        case .failure(.badPort(let port)):
            log.error("invalid port '\(port)' in '\(text)' (expected 0–65535)", at: location)
        case .failure(.malformed):
            log.error("invalid listen address '\(text)' (expected host:port, [v6]:port, :port or unix:/path.sock)", at: location)
        }
        return nil
    }

    private func readAccessLog(_ node: YAMLNode, into accessLog: inout AccessLogConfig) {
        guard let section = section(node, "access_log", keys: ["to", "format"]) else { return }
        if let value = section["to"], let to = string(value, "stdout, stderr, off or a file path") {
            switch to {
            case "stdout": accessLog.to = .stdout
            case "stderr": accessLog.to = .stderr
            case "off": accessLog.to = .off
            default: accessLog.to = .file(Self.resolve(to, relativeTo: value.location.file))
            }
        }
        if let value = section["format"], let format = choice(value, "access_log format", among: AccessLogConfig.Format.allCases) {
            accessLog.format = format
        }
    }

    private func readTimeouts(_ node: YAMLNode, into timeouts: inout TimeoutsConfig) {
        let fields: [(key: String, field: WritableKeyPath<TimeoutsConfig, Double>)] = [
            ("header", \.header), ("body", \.body), ("idle", \.idle), ("write", \.write), ("shutdown", \.shutdown),
        ]
        guard let section = section(node, "timeouts", keys: fields.map(\.key)) else { return }
        for (key, field) in fields {
            if let value = section[key], let seconds = duration(value) { timeouts[keyPath: field] = seconds }
        }
    }

    private func readLimits(_ node: YAMLNode, into limits: inout LimitsConfig) {
        let sizes: [(key: String, field: WritableKeyPath<LimitsConfig, Int>)] = [
            ("header_bytes", \.headerBytes), ("uri_bytes", \.uriBytes), ("body_bytes", \.bodyBytes),
        ]
        let counts: [(key: String, field: WritableKeyPath<LimitsConfig, Int>)] = [
            ("connections", \.connections), ("headers", \.headers),
        ]
        guard let section = section(node, "limits", keys: (counts + sizes).map(\.key)) else { return }
        for (key, field) in sizes {
            if let value = section[key], let bytes = size(value) { limits[keyPath: field] = bytes }
        }
        for (key, field) in counts {
            if let value = section[key], let count = integer(value, "a count", in: 1...Int.max) { limits[keyPath: field] = count }
        }
    }

    /// A `tls:` block (top level, per host or per listener): cert and key required, each file
    /// readable (docs/tls.md). A key others may read is warned about.
    /// `tls:` — `cert` and `key`, or `acme` (not on a listener: `onListener`), with the client
    /// certificate and version settings either way (docs/tls.md).
    func readTLS(_ node: YAMLNode, onListener: Bool = false) -> TLSConfig? {
        guard let section = section(node, "tls", keys: ["cert", "key", "client_ca", "client_auth", "min_version", "acme"]) else { return nil }
        var tls: TLSConfig?
        if let acmeNode = section["acme"] {
            if let other = section.entries.first(where: { $0.key == "cert" || $0.key == "key" }) {
                log.error("tls takes either 'cert' and 'key' or 'acme', not both", at: other.keyLocation)
            }
            if onListener, let location = section.keyLocation("acme") {
                log.error("'acme' belongs to tls at the top level or on a host: a listener's own certificate would have to name every host", at: location)
            }
            // The files are named once the host's names are known (`ConfigLoader.expandACME`).
            tls = readACME(acmeNode).map { acme in
                var tls = TLSConfig(cert: "", key: "")
                tls.acme = acme
                return tls
            }
        } else {
            let cert = required("cert", in: section, "tls").flatMap { readableFile($0, "certificate") }
            let key = required("key", in: section, "tls").flatMap { readableFile($0, "private key") }
            if let key, let node = section["key"] { warnIfOthersMayRead(key, at: node.location) }
            if let cert, let key { tls = TLSConfig(cert: cert, key: key) }
        }
        let clientCA = section["client_ca"].flatMap { readableFile($0, "CA bundle") }
        let clientAuth = section["client_auth"].flatMap { choice($0, "client_auth", among: [TLSConfig.ClientAuth.require, .optional]) }
        let minVersion = section["min_version"].flatMap { choice($0, "min_version", options: ["1.2", "1.3"]) }
        if section["client_ca"] == nil, let location = section.keyLocation("client_auth") {
            log.error("'client_auth' needs 'client_ca' (the CA that signs client certificates)", at: location)
        }
        guard var tls else { return nil }
        tls.clientCA = clientCA
        tls.clientAuth = clientAuth ?? (clientCA == nil ? nil : .require)
        tls.minVersion = minVersion ?? tls.minVersion
        tls.location = node.location
        (tls.certLocation, tls.keyLocation, tls.clientCALocation) = (section["cert"]?.location, section["key"]?.location, section["client_ca"]?.location)
        return tls
    }

    /// `tls.acme:` (docs/tls.md, *Automatic certificates*).
    private func readACME(_ node: YAMLNode) -> ACMEConfig? {
        guard let section = section(node, "acme", keys: ["email", "directory", "challenge", "storage", "ca_roots"]) else { return nil }
        var acme = ACMEConfig(storage: section["storage"].flatMap(path) ?? Self.defaultACMEStorage)
        if let value = section["email"], let email = string(value, "an e-mail address") {
            let parts = email.split(separator: "@", omittingEmptySubsequences: false)
            if parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !email.contains(where: { $0.isWhitespace || $0 == "," }) {
                acme.email = email
            } else {
                log.error("expected an e-mail address such as ops@example.com, got '\(email)'", at: value.location)
            }
        }
        if let value = section["directory"], let directory = string(value, "the URL of an ACME directory") {
            // RFC 8555 §6.1: ACME runs over HTTPS only.
            if let url = URL(string: directory), url.scheme?.lowercased() == "https", url.host != nil {
                acme.directory = directory
            } else {
                log.error("expected the https:// URL of an ACME directory, e.g. \(ACMEConfig.letsEncrypt), got '\(directory)'", at: value.location)
            }
        }
        if let value = section["challenge"], let challenge = choice(value, "challenge", among: ACMEConfig.Challenge.allCases) {
            acme.challenge = challenge
        }
        acme.caRoots = section["ca_roots"].flatMap { readableFile($0, "CA bundle") }
        acme.location = node.location
        return acme
    }

    /// Where ACME keeps its account and certificates when `storage` is not given: the user's data
    /// directory, as Caddy does (`$XDG_DATA_HOME`, else `~/.local/share`).
    static var defaultACMEStorage: String {
        let environment = ProcessInfo.processInfo.environment
        let data = environment["XDG_DATA_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        return data + "/pagi-serve/acme"
    }

    /// The path a node names, when a regular file is there that this process can read; watched
    /// for changes (`--watch`) like every file the configuration names. Its text is kept in
    /// `Config.sources`: a worker that drops root's privileges gets the certificates and keys its
    /// supervisor read (docs/operations.md, *Privileges*), as nginx's master reads them for its workers.
    private func readableFile(_ node: YAMLNode, _ what: String) -> String? {
        guard let file = path(node) else { return nil }
        if let text = sources[file] {
            config.sources[file] = text
            config.files.append(file)
            return file
        }
        var info = stat()
        guard stat(file, &info) == 0 else {
            log.error("\(what) '\(file)': no such file", at: node.location)
            return nil
        }
        // A regular file of a sane size: `/dev/zero` or a FIFO named by mistake must not hang the load.
        guard info.st_mode & S_IFMT == S_IFREG, info.st_size <= Self.largestPEMFile else {
            log.error("\(what) '\(file)' is not a regular file of at most 4 MiB", at: node.location)
            return nil
        }
        guard FileManager.default.isReadableFile(atPath: file) else {
            log.error("\(what) '\(file)' cannot be read (permissions)", at: node.location)
            return nil
        }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            log.error("\(what) '\(file)' is not PEM text", at: node.location)
            return nil
        }
        config.sources[file] = text
        config.files.append(file)
        return file
    }

    /// Large enough for any CA bundle (the system's is about 200 KiB).
    static let largestPEMFile = 4 * 1024 * 1024

    /// A private key is a secret: readable by its owner only (nginx and Caddy leave this to the
    /// operator; a warning costs nothing and catches a key copied with the wrong mode).
    private func warnIfOthersMayRead(_ key: String, at location: SourceLocation) {
        var info = stat()
        guard stat(key, &info) == 0, info.st_mode & 0o077 != 0 else { return }
        log.warning("private key '\(key)' may be read by others than its owner (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it", at: location)
    }

    func readPubSub(_ node: YAMLNode) {
        guard let text = string(node, "'memory' or a redis:// URL") else { return }
        guard text == "memory" || RedisEndpoint(url: text) != nil else {
            log.error("expected 'memory' or a URL like redis://127.0.0.1:6379/0 for pubsub, got '\(text)'", at: node.location)
            return
        }
        config.pubsub = text
    }
}
