import PagiConfig

/// A virtual host after compilation.
/// A class for the same reason as `CompiledRoute`: routing hands it around for every request.
public final class CompiledHost: Sendable {
    /// Lower-cased names as written (`example.com`, `*.example.org`, `*`).
    public let names: [String]
    public let isDefault: Bool
    /// Status code → absolute path of the error page file.
    public let errorPages: [Int: String]
    public let location: SourceLocation
    /// The host's routes in file order.
    public let routes: [CompiledRoute]
    /// Names of the host-level middleware (named stacks expanded).
    public let middlewareNames: [String]
    public var routeCount: Int { routes.count }
    let trie: RouteTrie

    init(names: [String], isDefault: Bool, errorPages: [Int: String], location: SourceLocation, routes: [CompiledRoute],
         middlewareNames: [String], trie: RouteTrie) {
        self.names = names
        self.isDefault = isDefault
        self.errorPages = errorPages
        self.location = location
        self.routes = routes
        self.middlewareNames = middlewareNames
        self.trie = trie
    }
}

/// The compiled configuration: plain data that the engine consults for every request.
public final class RoutingTable: Sendable {
    /// In file order.
    public let hosts: [CompiledHost]
    let hostSelector: HostSelector
    /// Metrics observer and admin listener, when the config asks for them.
    public let services: ServerServices

    init(hosts: [CompiledHost], hostSelector: HostSelector, services: ServerServices = ServerServices()) {
        self.hosts = hosts
        self.hostSelector = hostSelector
        self.services = services
    }

    /// The same table, with `services` for the engine.
    public func with(_ services: ServerServices) -> RoutingTable {
        RoutingTable(hosts: hosts, hostSelector: hostSelector, services: services)
    }

    /// Host selection: case-insensitive, port ignored, exact beats wildcard (longest wildcard
    /// suffix first), then "*", then the default host.
    public func host(named name: String) -> CompiledHost {
        hosts[hostSelector.select(name).host]
    }

    /// Full routing of a request: host, then route (uses path, method, headers, query and body).
    public func route(_ request: Request) -> (host: CompiledHost, lookup: RouteLookup) {
        let host = host(named: request.host)
        return (host, Self.lookup(request, in: host.trie).lookup)
    }

    /// The lookup and, when a route matched, which entry it was (for `explain`).
    static func lookup(_ request: Request, in trie: RouteTrie) -> (lookup: RouteLookup, winner: RouteEntry?) {
        var finder = AcceptingRouteFinder()
        trie.forEachMatch(of: request, &finder)
        // Contract-level choice, as Go's ServeMux: a request for `/docs` when `/docs/` is a subtree
        // goes to that subtree (whose handler decides, e.g. static answers 301 to `/docs/`) unless
        // a pattern matches `/docs` itself exactly; a broader subtree such as `/` does not count.
        if finder.winner?.isExact != true, trie.hasTailsBelowRoot, request.path.utf8.last != UInt8(ascii: "/") {
            finder.wantsSubtreeRoots = true
            trie.forEachMatch(of: request, &finder)
        }
        if let winner = finder.winner { return (.matched(winner.entry.route, params: winner.parameters), winner.entry) }
        guard !finder.allowed.isEmpty else { return (.notFound, nil) }
        finder.allowed.insert("OPTIONS")
        return (.methodNotAllowed(allow: finder.allowed.sorted()), nil)
    }
}

/// Finds the first route whose conditions all hold, among the matches of the path itself or,
/// with `wantsSubtreeRoots`, among subtrees rooted at the path plus a slash. Collects the methods
/// of the routes that failed only on the method, for the `Allow` header of a 405.
private struct AcceptingRouteFinder: RouteMatchVisitor {
    var wantsSubtreeRoots = false
    var winner: (entry: RouteEntry, parameters: [String: String], isExact: Bool)?
    var allowed: Set<String> = []
    private var facts = RequestFacts()

    mutating func visit(_ match: RouteTrie.Match, of request: Request) -> Bool {
        guard (match.kind == .subtreeRootWithoutSlash) == wantsSubtreeRoots else { return false }
        for entry in match.routes {
            switch entry.verdict(request, &facts) {
            case .accepted:
                winner = (entry, entry.parameters(captures: match.captures, rest: match.rest), match.isExact)
                return true
            case .failsOnlyMethod:
                allowed.formUnion(entry.route.methods ?? [])
            case .rejected:
                continue
            }
        }
        return false
    }
}
