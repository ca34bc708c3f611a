import ArgumentParser
import Foundation
import PagiBuiltins
import PagiConfig
import PagiCore
import PagiProxy
import Synchronization

/// `pagi-serve record --upstream URL --out stubs.yaml [--listen …]` (docs/proxy.md, *Record
/// mode*): a proxy to `URL` that writes every distinct request it passed on as a `respond` route,
/// so that real traffic becomes a stub configuration `pagi-serve check` accepts and serving it
/// answers as the upstream did.
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Proxy to an upstream and write every distinct request as a `respond` route (real traffic becomes stubs).")
    @Option(help: "The upstream to record, http:// or https://.") var upstream: String
    @Option(help: "The stub configuration to write; bodies over 2 KiB go to files in a folder beside it.") var out = "stubs.yaml"
    @OptionGroup var options: ServeOptions

    func run() throws {
        guard let url = URL(string: upstream), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw ValidationError("--upstream takes a URL like http://127.0.0.1:9001, got '\(upstream)'")
        }
        guard !options.watch else { throw ValidationError("--watch needs a configuration file; `record` has none") }
        let location = SourceLocation(file: "<command line>", line: 1, column: 1)
        var host = HostConfig(location: location)
        host.names = ["*"]
        host.isDefault = true
        host.routes = [RouteConfig(pattern: try RoutePattern(parsing: "/"), pathLocation: location, handler: .proxy(ProxyOptions(upstreams: [upstream])),
                                   handlerLocation: location, location: location)]
        var config = Config()
        config.hosts = [host]
        try CLI.applyOverrides(&config, options: options)
        let output = URL(fileURLWithPath: out, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
        ProxyHandler.record(to: StubRecorder(output: output, upstream: upstream))
        let compiler = Builtins.Compiler()
        let table = CLI.compileOrExit(config, with: compiler)
        CLI.printErr("recording \(upstream) into \(output.path)")
        ServingProcess.run(path: nil, config: config, table: table, compiler: compiler, overrides: options, watch: false)
    }
}

/// Keeps the exchanges and rewrites the stub file after each (whole, through a temporary file):
/// whenever the recording stops, the file is complete.
final class StubRecorder: ProxyRecorder {
    private let output: URL
    private let upstream: String
    private let exchanges = Mutex<[RecordedExchange]>([])
    private let writer = DispatchQueue(label: "pagi-serve.record")
    private let full = Atomic(false)

    init(output: URL, upstream: String) {
        self.output = output
        self.upstream = upstream
    }

    /// What one recording keeps at most: a session longer than this is a load test, not a sample,
    /// and memory must not grow with it.
    static let maxExchanges = 10_000
    static let maxBodyBytes = 512 << 20
    private let bodyBytes = Mutex(0)

    func record(_ exchange: RecordedExchange) {
        let kept = bodyBytes.withLock { total in
            guard total + exchange.body.count <= Self.maxBodyBytes else { return false }
            total += exchange.body.count
            return true
        }
        let all: [RecordedExchange]? = kept ? exchanges.withLock { list in
            guard list.count < Self.maxExchanges else { return nil }
            list.append(exchange)
            return list
        } : nil
        guard let all else {
            if full.exchange(true, ordering: .relaxed) == false {
                CLI.printErr("warning: the recording is full (\(Self.maxExchanges) exchanges or \(Self.maxBodyBytes >> 20) MiB of bodies): later exchanges are passed on but not written down")
            }
            return
        }
        writer.async { [output, upstream] in
            let stubs = StubFile(exchanges: all, upstream: upstream, bodiesFolder: output.deletingPathExtension().lastPathComponent + "-bodies")
            do {
                try stubs.write(to: output)
            } catch {
                CLI.printErr("error: cannot write \(output.path): \(error)")
            }
        }
    }
}

/// The recorded exchanges as a configuration (docs/proxy.md, *Record mode*):
/// - one route per method and path, with a `query` condition per query that got its own answer;
///   JSON requests that got different answers also get routes with `body_json` conditions on the
///   top-level fields that tell them apart; answers that changed between identical requests become
///   a `respond` list, served in turn;
/// - paths that differ in one segment only (`/users/1`, `/users/2`) also get a route with a
///   parameter there (`/users/{id}`), answering as the last of them for ids never recorded;
/// - the answer's status, the fields worth keeping (content type, caching, location, links, CORS,
///   `X-…`) — never `Set-Cookie` — and its body: inline when short text, else a file beside the stubs.
struct StubFile {
    let exchanges: [RecordedExchange]
    let upstream: String
    let bodiesFolder: String
    static let inlineLimit = 2048
    static let keptFields: Set<String> = ["content-type", "content-language", "content-disposition", "cache-control", "expires",
                                          "etag", "last-modified", "location", "link", "vary", "www-authenticate", "retry-after"]

    func write(to output: URL) throws {
        var files: [(name: String, bytes: [UInt8])] = []
        let yaml = render(files: &files)
        let folder = output.deletingLastPathComponent().appendingPathComponent(bodiesFolder)
        if !files.isEmpty { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        for file in files { try Data(file.bytes).write(to: folder.appendingPathComponent(file.name), options: .atomic) }
        try Data(yaml.utf8).write(to: output, options: .atomic)
    }

    func render(files: inout [(name: String, bytes: [UInt8])]) -> String {
        var lines = [
            "# Recorded by `pagi-serve record` from \(upstream): \(exchanges.count) exchanges.",
            "# Serve it: pagi-serve \(bodiesFolder.replacingOccurrences(of: "-bodies", with: "")).yaml (docs/proxy.md, Record mode)",
            "hosts:",
            "  - names: [\"*\"]",
            "    routes:",
        ]
        var groups: [String: [RecordedExchange]] = [:]
        var order: [String] = []
        for exchange in exchanges where Self.isPlainPath(exchange.path) {
            let key = exchange.method + " " + exchange.path
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(exchange)
        }
        for key in order {
            guard let group = groups[key], let first = group.first else { continue }
            // One route per query that is a distinct condition (`a=b` and `a=%62` are one).
            var queries: [String?] = []
            var seen: Set<String> = []
            for exchange in group {
                let signature = exchange.query.map { query in Self.conditions(query).map { $0.map { "\($0.name)=\($0.value)" }.joined(separator: "&") } ?? query } ?? ""
                if seen.insert(signature).inserted { queries.append(exchange.query) }
            }
            // With a query condition first: among routes of one pattern, more conditions are tried first anyway.
            for query in queries.sorted(by: { ($0 == nil ? 0 : 1) > ($1 == nil ? 0 : 1) }) {
                let signature = query.map { Self.conditions($0).map { $0.map { "\($0.name)=\($0.value)" } } } ?? nil
                let answers = group.filter { exchange in
                    exchange.query == query || (signature != nil && exchange.query.flatMap(Self.conditions).map { $0.map { "\($0.name)=\($0.value)" } } == signature)
                }
                var route = ["      - path: \(Self.quoted(first.path))", "        methods: [\(Self.quoted(first.method))]"]
                if let query, let conditions = Self.conditions(query) {
                    route.append("        query: {\(conditions.map { "\(Self.quoted($0.name)): \(Self.quoted($0.value))" }.joined(separator: ", "))}")
                } else if query != nil && queries.contains(where: { $0 == nil }) {
                    continue  // a query that cannot be a condition: the unconditioned route answers it
                }
                for (condition, alike) in Self.bodyConditions(answers) {
                    lines += route + ["        body_json: {\(condition)}"] + respond(alike, files: &files)
                }
                route += respond(answers, files: &files)
                lines += route
            }
        }
        lines += parameterRoutes(order: order, groups: groups, files: &files)
        return lines.joined(separator: "\n") + "\n"
    }

    /// When `answers` differ and their requests are JSON objects: a `body_json` condition on the
    /// top-level scalar fields whose values differ between them, and the answers given to each
    /// combination of values (routes with more conditions are tried first, so these come before the
    /// route without). None when the bodies do not tell the answers apart.
    private static func bodyConditions(_ answers: [RecordedExchange]) -> [(condition: String, answers: [RecordedExchange])] {
        guard Set(answers.map { [UInt8](String($0.status).utf8) + [0] + $0.body }).count > 1 else { return [] }
        let fields = answers.map { jsonFields($0.requestBody) }
        guard let first = fields.first, var common = first.map({ Set($0.keys) }) else { return [] }
        for object in fields.dropFirst() {
            guard let object else { return [] }
            common.formIntersection(object.keys)
        }
        let telling = common.filter { key in Set(fields.compactMap { $0?[key] }).count > 1 }.sorted()
        guard !telling.isEmpty else { return [] }
        var groups: [(condition: String, answers: [RecordedExchange])] = []
        for (answer, object) in zip(answers, fields) {
            let condition = telling.map { "\(quoted("$." + $0)): \(object?[$0] ?? "null")" }.joined(separator: ", ")
            if let index = groups.firstIndex(where: { $0.condition == condition }) {
                groups[index].answers.append(answer)
            } else {
                groups.append((condition, [answer]))
            }
        }
        return groups
    }

    /// The top-level scalar members of a JSON object body as YAML scalars of the same type (`7`,
    /// `"7"`, `true`, `null`), for names a `body_json` path can hold; nil when the body is not an object.
    private static func jsonFields(_ body: [UInt8]) -> [String: String]? {
        guard case .object(let members)? = JSONValue.parse(body) else { return nil }
        var fields: [String: String] = [:]
        for (key, value) in members
        where key.first.map({ $0.isLetter || $0 == "_" }) ?? false && key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
            switch value {
            case .string(let text): fields[key] = quoted(text)
            case .integer(let number): fields[key] = String(number)
            case .number(let number) where number.isFinite: fields[key] = String(number)
            case .bool(let flag): fields[key] = String(flag)
            case .null: fields[key] = "null"
            default: fields.removeValue(forKey: key)
            }
        }
        return fields
    }

    /// `/users/{id}` for paths of one method that differ in exactly one segment.
    private func parameterRoutes(order: [String], groups: [String: [RecordedExchange]], files: inout [(name: String, bytes: [UInt8])]) -> [String] {
        var patterns: [String: RecordedExchange] = [:]
        var patternOrder: [String] = []
        var counts: [String: Int] = [:]
        for key in order {
            guard let exchange = groups[key]?.last else { continue }
            let segments = exchange.path.split(separator: "/", omittingEmptySubsequences: false)
            for (index, segment) in segments.enumerated() where index > 0 && Self.looksLikeID(segment) {
                var templated = segments
                templated[index] = "{id}"
                let pattern = exchange.method + " " + templated.joined(separator: "/")
                if patterns[pattern] == nil { patternOrder.append(pattern) }
                patterns[pattern] = exchange
                counts[pattern, default: 0] += 1
            }
        }
        var lines: [String] = []
        for pattern in patternOrder where counts[pattern, default: 0] >= 2 {
            guard let exchange = patterns[pattern], let space = pattern.firstIndex(of: " ") else { continue }
            let path = String(pattern[pattern.index(after: space)...])
            guard (try? RoutePattern(parsing: path)) != nil else { continue }
            lines += ["      - path: \(Self.quoted(path))", "        methods: [\(Self.quoted(exchange.method))]"]
            lines += respond([exchange], files: &files)
        }
        return lines
    }

    /// The `respond` of `answers`: one response, or a list when they differ.
    private func respond(_ answers: [RecordedExchange], files: inout [(name: String, bytes: [UInt8])]) -> [String] {
        var distinct: [RecordedExchange] = []
        for answer in answers where !(distinct.last.map { $0.status == answer.status && $0.body == answer.body } ?? false) {
            distinct.append(answer)
        }
        if distinct.count == 1, let only = distinct.first { return ["        respond: " + response(only, files: &files)] }
        return ["        respond:"] + distinct.map { "          - " + response($0, files: &files) }
    }

    private func response(_ exchange: RecordedExchange, files: inout [(name: String, bytes: [UInt8])]) -> String {
        var parts = ["status: \(exchange.status)"]
        let fields = exchange.headers.filter { field in
            let name = field.name.lowercased()
            return (Self.keptFields.contains(name) || name.hasPrefix("access-control-") || (name.hasPrefix("x-") && !name.hasPrefix("x-forwarded-")))
                && !field.value.contains("{{")
        }
        if !fields.isEmpty {
            parts.append("headers: {" + fields.map { "\(Self.quoted($0.name)): \(Self.quoted($0.value))" }.joined(separator: ", ") + "}")
        }
        if !exchange.body.isEmpty {
            // Inline bodies are templates: text that looks like one goes to a file, sent as is.
            if exchange.body.count <= Self.inlineLimit, let text = String(validating: exchange.body, as: UTF8.self),
               !text.contains("{{"), !text.contains("}}") {
                parts.append("body: \(Self.quoted(text))")
            } else {
                let type = exchange.headers.first { $0.name.lowercased() == "content-type" }?.value.lowercased() ?? ""
                let suffix = type.contains("json") ? "json" : type.contains("html") ? "html" : type.hasPrefix("text/") ? "txt" : "bin"
                let name = "\(files.count + 1).\(suffix)"
                files.append((name, exchange.body))
                parts.append("file: \(Self.quoted(bodiesFolder + "/" + name))")
            }
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// A segment that names one thing among many: digits, a UUID, or a token of 8 or more
    /// characters with a digit in it (`/users/42`, `/orders/3f2a9c1e`), not a word (`/users`).
    private static func looksLikeID(_ segment: Substring) -> Bool {
        guard !segment.isEmpty else { return false }
        if segment.allSatisfy(\.isNumber) { return true }
        return segment.count >= 8 && segment.contains(where: \.isNumber)
            && segment.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
    }

    /// Paths a literal route pattern can hold: no braces, no encoded separators.
    private static func isPlainPath(_ path: String) -> Bool {
        path.hasPrefix("/") && !path.contains("{") && !path.contains("}") && !path.lowercased().contains("%2f")
            && (try? RoutePattern(parsing: path)) != nil
    }

    /// The query's decoded pairs, when each name appears once (a `query` condition takes one value per name).
    private static func conditions(_ query: String) -> [(name: String, value: String)]? {
        var pairs: [(name: String, value: String)] = []
        for item in query.split(separator: "&") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String? { String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), let value = parts.count > 1 ? decode(parts[1]) : "",
                  !pairs.contains(where: { $0.name == name }) else { return nil }
            pairs.append((name, value))
        }
        return pairs.isEmpty ? nil : pairs
    }

    /// A YAML double-quoted scalar. Not `TextEscaping.jsonString`: YAML wants more escaped than
    /// JSON does (DEL, C1 controls, U+2028/2029, a byte-order mark), or its parser refuses the file.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF {
                    out += String(format: "\\u%04X", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
