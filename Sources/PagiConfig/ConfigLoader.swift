import Foundation

/// Loads the YAML configuration file (docs/configuration.md §2–§6) into a validated `Config`.
public enum ConfigLoader {
    /// Loads and validates `path` (and its includes). Throws `ConfigError` carrying every error found
    /// (and the warnings). On success returns the Config with `config.warnings` filled.
    ///
    /// `sources`: the texts of configuration files (main file and includes, by absolute path) to
    /// read instead of the files — what a supervisor validated, given to the workers it starts so
    /// that they never load a file it refused (`Config.sources`; docs/operations.md, *Reload with
    /// workers*).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            sources: [String: String] = [:]) throws -> Config {
        let builder = ConfigBuilder(environment: environment, sources: sources)
        builder.readMainFile(path, text: nil)
        return try builder.finish()
    }

    /// Same, from text (for tests); `fileName` is used in diagnostics and to resolve relative paths
    /// (relative to its directory).
    public static func load(yaml: String, fileName: String, environment: [String: String]) throws -> Config {
        let builder = ConfigBuilder(environment: environment)
        builder.readMainFile(fileName, text: yaml)
        return try builder.finish()
    }
}

extension ConfigBuilder {
    static let topLevelKeys = ["server", "tls", "pubsub", "middleware", "include", "hosts"]
    static let includedFileKeys = ["middleware", "include", "hosts"]

    func readMainFile(_ file: String, text: String?) {
        includeChain = [(file, Self.absolutePath(file))]
        guard let top = readFile(file, text: text, includedFrom: nil) else { return }
        // pubsub first: the server section warns about `workers` with in-memory channels.
        if let value = top["pubsub"] { readPubSub(value) }
        if let value = top["server"] { readServer(value) }
        if let value = top["tls"] { config.tls = readTLS(value) }
        readSharedKeys(of: top)
        if top["hosts"] == nil, config.hosts.isEmpty {
            log.error("missing required key 'hosts' (the list of virtual hosts)", at: top.location)
        }
    }

    /// Reads, parses and checks the top-level keys of one file; nil when it cannot be used.
    private func readFile(_ file: String, text: String?, includedFrom: SourceLocation?) -> Section? {
        filesInReadOrder.append(file)
        let absolute = Self.absolutePath(file)
        config.files.append(absolute)
        let errorLocation = includedFrom ?? SourceLocation(file: file, line: 1, column: 1)
        guard let content = text ?? sources[absolute] ?? FileManager.default.contents(atPath: file).flatMap({ String(data: $0, encoding: .utf8) }) else {
            let exists = FileManager.default.fileExists(atPath: file)
            log.error(exists ? "cannot read '\(file)' as UTF-8 text" : "cannot read '\(file)': no such file", at: errorLocation)
            return nil
        }
        config.sources[absolute] = content
        guard let root = YAMLDocumentReader(file: file, environment: environment, log: log).read(content),
              let entries = mapping(root, "the top level")
        else { return nil }
        let allowed = includedFrom == nil ? Self.topLevelKeys : Self.includedFileKeys
        for entry in entries where !allowed.contains(entry.key) {
            if Self.topLevelKeys.contains(entry.key) {
                log.error("'\(entry.key)' is only allowed in the main file (an included file may hold hosts, middleware and include)", at: entry.keyLocation)
            } else {
                log.error("unknown key '\(entry.key)' at the top level\(Suggestion.hint(for: entry.key, among: allowed))", at: entry.keyLocation)
            }
        }
        return Section(location: root.location, entries: entries.filter { allowed.contains($0.key) })
    }

    /// `middleware`, `hosts` and `include`: the keys every file may hold. A file's own hosts come before those it includes.
    private func readSharedKeys(of top: Section) {
        if let value = top["middleware"] { readMiddlewareStacks(value) }
        if let value = top["hosts"] { readHosts(value) }
        if let value = top["include"] { readIncludes(value) }
    }

    private func readIncludes(_ node: YAMLNode) {
        for item in stringList(node, "a list of files or patterns like hosts/*.yaml") ?? [] {
            let directory = (item.location.file as NSString).deletingLastPathComponent
            let pattern = item.text.hasPrefix("/") || directory.isEmpty ? item.text : directory + "/" + item.text
            let matches = FileGlob.expand(pattern)
            if matches.isEmpty {
                let isPattern = item.text.contains(where: { "*?[".contains($0) })
                log.error(isPattern ? "include pattern '\(item.text)' matches no file" : "include file '\(item.text)' not found", at: item.location)
            }
            for file in matches {
                let absolute = Self.absolutePath(file)
                if let start = includeChain.firstIndex(where: { $0.absolute == absolute }) {
                    let cycle = (includeChain[start...].map(\.file) + [file]).joined(separator: " → ")
                    log.error("include cycle: \(cycle)", at: item.location)
                    continue
                }
                includeChain.append((file, absolute))
                if let top = readFile(file, text: nil, includedFrom: item.location) { readSharedKeys(of: top) }
                includeChain.removeLast()
            }
        }
    }

    /// Cross-file checks, then every diagnostic sorted by file (in read order), line and column.
    func finish() throws -> Config {
        checkStackReferences()
        checkHostUniqueness()
        checkChannelsAcrossWorkers()
        expandACME()
        checkCertificates()
        let sorted = log.diagnostics.enumerated().sorted { a, b in
            sortKey(a.element, a.offset).lexicographicallyPrecedes(sortKey(b.element, b.offset))
        }.map(\.element)
        if log.hasErrors { throw ConfigError(diagnostics: sorted, partial: config) }
        config.warnings = sorted
        return config
    }

    /// ACME certificates are per host (docs/tls.md, *Automatic certificates*): top-level
    /// `tls.acme` gives each host without its own `tls` one for its names, and each names the
    /// files of its host's names in the storage. http-01 and tls-alpn-01 cannot prove control of
    /// a wildcard: a host's own `acme` with one is an error; under the top-level one, such names
    /// are served with another host's certificate, and said so.
    private func expandACME() {
        let shared = config.tls?.acme == nil ? nil : config.tls
        if shared != nil { config.tls = nil }
        for index in config.hosts.indices {
            let host = config.hosts[index]
            guard var tls = host.tls ?? shared, let acme = tls.acme, let location = tls.location else { continue }
            let names = host.names.filter { !$0.hasPrefix("*") }
            let wildcards = host.names.filter { $0.hasPrefix("*") }
            if host.tls != nil, let wildcard = wildcards.first {
                log.error("ACME cannot certify the wildcard name '\(wildcard)' (http-01 and tls-alpn-01 prove control of one name): give this host cert and key", at: location)
                continue
            }
            if !wildcards.isEmpty {
                log.warning("ACME cannot certify \(wildcards.map { "'\($0)'" }.joined(separator: ", ")): requests for \(wildcards.count == 1 ? "it" : "them") get another host's certificate unless this host has its own cert and key", at: host.location)
            }
            guard !names.isEmpty else {
                if host.tls != nil { log.error("this host has no name to obtain a certificate for: give it names", at: location) }
                continue
            }
            tls.acmeNames = names
            (tls.cert, tls.key) = ACMEStorage.certificateFiles(acme, names: names)
            // A worker without privileges serves what its supervisor read from the storage.
            for file in [tls.cert, tls.key] { config.sources[file] = sources[file] ?? config.sources[file] }
            config.hosts[index].tls = tls
        }
        let managed = config.hosts.compactMap { $0.tls?.acme }
        if let location = shared?.location, managed.isEmpty {
            log.error("no host has a name ACME can obtain a certificate for: name one, e.g. names: [example.com]", at: location)
        }
        let plainHTTP = config.server.listen.contains { listener in
            if case .tcp = listener.address { return !listener.tls }
            return false
        }
        if !plainHTTP, let http01 = managed.first(where: { $0.challenge == .http01 }), let location = http01.location {
            log.error("challenge: http-01 is answered on a plain-HTTP listener, and none is configured: add one (port 80 for a public CA) or use challenge: tls-alpn-01", at: location)
        }
    }

    /// Every TLS listener has a certificate to offer — its own, the top-level one, or a host's —
    /// and a certificate configured for no TLS listener is pointed out (docs/tls.md).
    private func checkCertificates() {
        let tlsListeners = config.server.listen.filter(\.tls)
        let hostCertificates = config.hosts.contains { $0.tls != nil }
        for listener in tlsListeners where listener.tlsSettings == nil && config.tls == nil && !hostCertificates {
            guard let location = listener.location else { continue }
            log.error("this listener serves TLS but no certificate is configured: add tls: {cert, key} at the top level, to a host, or to the listener",
                      at: location)
        }
        guard tlsListeners.isEmpty, let unused = config.tls?.location ?? config.hosts.lazy.compactMap({ $0.tls?.location }).first else { return }
        log.warning("a certificate is configured but no listener serves TLS: add one, e.g. listen: [\"127.0.0.1:8080\", {address: \"127.0.0.1:8443\", tls: true}]",
                    at: unused)
    }

    /// In-memory channels do not cross worker processes: a warning when several workers serve routes
    /// that use channels (docs/operations.md, *State per worker*).
    private func checkChannelsAcrossWorkers() {
        guard let location = severalWorkersLocation, config.pubsub == "memory" else { return }
        let usesChannels = config.hosts.flatMap(\.routes).contains { route in
            switch route.handler {
            case .publish: return true
            case .sse(let sse): if case .subscribe = sse.source { return true } else { return false }
            case .websocket(let socket): if case .echo = socket.mode { return false } else { return true }
            default: return false
            }
        }
        if usesChannels {
            log.warning("with pubsub: memory, channels are per worker process: use pubsub: redis://… to share them", at: location)
        }
    }

    private func sortKey(_ diagnostic: Diagnostic, _ offset: Int) -> [Int] {
        guard let location = diagnostic.location else { return [Int.max, 0, 0, offset] }
        let fileIndex = filesInReadOrder.firstIndex(of: location.file) ?? filesInReadOrder.count
        return [fileIndex, location.line, location.column, offset]
    }
}
