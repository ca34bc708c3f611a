import Foundation
import PagiConfig

// The human-readable views of the table: `pagi-serve routes` and `pagi-serve explain`.
extension RoutingTable {
    /// One line per route: host names, pattern, methods, conditions, handler, middleware, file:line.
    public func renderRoutes() -> String {
        var rows = [["HOST", "PATTERN", "METHODS", "CONDITIONS", "HANDLER", "MIDDLEWARE", "LOCATION"]]
        for (index, host) in hosts.enumerated() {
            let hostLabel = Self.names(of: host, separator: ",") + (index == hostSelector.defaultHost ? " (default)" : "")
            if host.routes.isEmpty { rows.append([hostLabel, "(no routes)", "", "", "", "", ""]) }
            for route in host.routes {
                rows.append([
                    hostLabel, route.pattern, route.methods.map { $0.sorted().joined(separator: ",") } ?? "*",
                    Self.conditionsSummary(route) ?? "-", route.handlerName,
                    route.middlewareNames.isEmpty ? "-" : route.middlewareNames.joined(separator: ","),
                    "\(route.location.file):\(route.location.line)",
                ])
                for sub in (route.handler as? any SubrouteListing)?.subroutes ?? [] {
                    rows.append([hostLabel, "  " + sub.pattern, sub.methods.joined(separator: ","), "-",
                                 "\(route.handlerName): \(sub.description)", "-", ""])
                }
            }
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            let line = zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ")
            return String(line.reversed().drop { $0 == " " }.reversed())
        }.joined(separator: "\n") + "\n"
    }

    /// Which host and route would serve `request` and why; then one line for each other route
    /// whose pattern matched, saying why it did not win.
    public func explain(_ request: Request) -> String {
        let (hostIndex, reason) = hostSelector.select(request.host)
        let host = hosts[hostIndex]
        let query = request.query.map { "?" + $0 } ?? ""
        var lines = [
            "request: \(request.method) \(request.path)\(query) (host '\(request.host)')",
            "host: \(Self.names(of: host, separator: ", ")) at \(host.location): \(Self.describe(reason))",
        ]
        let (lookup, winner, _) = Self.lookup(request, in: host.trie)
        switch lookup {
        case .matched(let route, let params):
            lines.append("route: \(route.pattern) at \(route.location) → \(route.handlerName)")
            if !params.isEmpty {
                lines.append("params: " + params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            }
            lines.append("middleware: " + (route.middlewareNames.isEmpty ? "none" : route.middlewareNames.joined(separator: " → ")))
        case .methodNotAllowed(let allow):
            lines.append("route: none → 405 Method Not Allowed (Allow: \(allow.joined(separator: ", ")))")
        case .notFound:
            lines.append("route: none → 404 Not Found (no route matches \(request.path))")
        }
        let misses = Self.nearMisses(request, in: host.trie, winner: winner)
        if !misses.isEmpty {
            lines.append("not chosen:")
            lines += misses.map { "  " + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func names(of host: CompiledHost, separator: String) -> String {
        host.names.isEmpty ? "(no names)" : host.names.joined(separator: separator)
    }

    private static func describe(_ reason: HostSelector.Reason) -> String {
        switch reason {
        case .exactName(let name): return "exact name '\(name)'"
        case .wildcard(let pattern): return "wildcard '\(pattern)' (no exact name matched)"
        case .star: return "name '*' (no exact or wildcard name matched)"
        case .defaultHost: return "default host (no name matched)"
        }
    }

    private struct Candidate {
        let kind: RouteTrie.MatchKind
        let node: Int
        let entry: RouteEntry
    }

    /// Every route of every matching pattern, in the order they are tried.
    private struct CandidateCollector: RouteMatchVisitor {
        var candidates: [Candidate] = []
        mutating func visit(_ match: RouteTrie.Match, of request: Request) -> Bool {
            candidates += match.routes.map { Candidate(kind: match.kind, node: match.node, entry: $0) }
            return false
        }
    }

    private static func nearMisses(_ request: Request, in trie: RouteTrie, winner: RouteEntry?) -> [String] {
        var collector = CandidateCollector()
        trie.forEachMatch(of: request, &collector)
        let candidates = collector.candidates
        let chosen = candidates.first { $0.entry.order == winner?.order }
        var facts = RequestFacts()
        return candidates.compactMap { candidate in
            guard candidate.entry.order != winner?.order else { return nil }
            let route = candidate.entry.route
            let unmet = unmetConditions(candidate.entry, request, &facts)
            let why = unmet.isEmpty ? whyNotChosen(candidate, chosen: chosen, path: request.path) : unmet.joined(separator: "; ")
            return "\(route.pattern) at \(route.location): \(why)"
        }
    }

    /// Why a route whose conditions all hold lost to the chosen one.
    private static func whyNotChosen(_ candidate: Candidate, chosen: Candidate?, path: String) -> String {
        guard let chosen else { return "also matches" }
        let winnerPattern = chosen.entry.route.pattern
        if candidate.kind == .subtreeRootWithoutSlash {
            return "matches only as '\(path)/' (its subtree root), and '\(winnerPattern)' matches '\(path)' itself"
        }
        if chosen.kind == .subtreeRootWithoutSlash {
            return "also matches, but '\(path)' is the root of the subtree '\(winnerPattern)' (without its trailing slash)"
        }
        if candidate.node == chosen.node, candidate.kind == chosen.kind {
            return "also accepts, but '\(winnerPattern)' at \(chosen.entry.route.location) is tried first (more conditions, or earlier in the file)"
        }
        return "also matches, but '\(winnerPattern)' is more specific"
    }

    private static func unmetConditions(_ entry: RouteEntry, _ request: Request, _ facts: inout RequestFacts) -> [String] {
        var unmet: [String] = []
        if !entry.acceptsMethod(request.method), let methods = entry.route.methods {
            unmet.append("method \(request.method) not allowed (allows \(methods.sorted().joined(separator: ", ")))")
        }
        if let header = entry.unmetHeader(request) {
            let actual = request.headers[header.name].map { "is '\($0)'" } ?? "is missing"
            unmet.append("header '\(header.name)' \(actual), needs '\(header.expected)'")
        }
        if let query = entry.unmetQuery(request, &facts) {
            let actual = query.actual.map { "is '\($0)'" } ?? "is missing"
            unmet.append("query parameter '\(query.name)' \(actual), needs '\(query.expected)'")
        }
        switch entry.unmetBody(request, &facts) {
        case .notJSON?:
            unmet.append("body is not JSON (needed for body_json)")
        case .mismatch(let path, let expected, let actual)?:
            let found = actual.map { "is \(describeJSON($0))" } ?? "is missing"
            unmet.append("body_json \(path) \(found), needs \(describe(expected))")
        case nil:
            break
        }
        return unmet
    }

    private static func describe(_ value: ConfigValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return String(flag)
        case .int(let integer): return String(integer)
        case .double(let double): return String(double)
        case .string(let string): return "\"\(string)\""
        case .list: return "a list"
        case .map: return "a mapping"
        }
    }

    private static func describeJSON(_ value: JSONValue) -> String {
        switch value {
        case .array: return "an array"
        case .object: return "an object"
        default: return value.text
        }
    }

    private static func conditionsSummary(_ route: CompiledRoute) -> String? {
        let parts = route.headers.sorted { $0.key < $1.key }.map { "header \($0.key)=\($0.value)" }
            + route.query.sorted { $0.key < $1.key }.map { "query \($0.key)=\($0.value)" }
            + route.bodyJSON.map { "body \($0.path)=\(describe($0.value))" }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
