import PagiConfig

/// How a request body is taken in (`RoutingTable.bodyIntake(for:length:)`).
public struct BodyIntake: Sendable, Equatable {
    /// The smallest `body_limit` on the way, if any.
    public var limit: Int?
    /// Handed to the handler as it arrives (`Request.context.bodySource`) instead of read whole first.
    public var streamed = false
}

/// A virtual host after compilation.
/// A class for the same reason as `CompiledRoute`: routing hands it around for every request.
public final class CompiledHost: Sendable {
    /// Lower-cased names as written (`example.com`, `*.example.org`, `*`).
    public let names: [String]
    public let isDefault: Bool
    /// Status code → the host's own error page, read when the config was compiled.
    public let errorPages: [Int: [UInt8]]
    public let location: SourceLocation
    /// The host's routes in file order.
    public let routes: [CompiledRoute]
    /// Names of the server-wide and host middleware (named stacks expanded), outermost first.
    public let middlewareNames: [String]
    /// The smallest server-wide or host `body_limit`, if any.
    public let bodyLimit: Int?
    public var routeCount: Int { routes.count }
    let trie: RouteTrie
    /// Server-wide and host middleware wrapped around the router, composed once: every answer
    /// of the host passes through them, routing's own 404/405/`OPTIONS` included.
    let responder: any Responder

    init(names: [String], isDefault: Bool, errorPages: [Int: [UInt8]], location: SourceLocation, routes: [CompiledRoute],
         middleware: [any Middleware], middlewareNames: [String], bodyLimit: Int?, trie: RouteTrie, labelsRequests: Bool,
         knownMethods: Set<String>?) {
        self.names = names
        self.isDefault = isDefault
        self.errorPages = errorPages
        self.location = location
        self.routes = routes
        self.middlewareNames = middlewareNames
        self.bodyLimit = bodyLimit
        self.trie = trie
        self.responder = middleware.wrapping(HostRouter(trie: trie, labelsRequests: labelsRequests, knownMethods: knownMethods))
    }
}

/// The innermost responder of a host: finds the route and runs it, or answers by itself.
struct HostRouter: Responder {
    let trie: RouteTrie
    /// Record the route in the request's context (see `RequestContext.routePattern`).
    let labelsRequests: Bool
    /// The table's known methods when some route answers every method (`AnswersEveryMethod`):
    /// unknown methods then reach routing, and any other route answers them 501, as the engine
    /// does otherwise. nil when no route does: the engine refused them, nothing to check.
    let knownMethods: Set<String>?

    func respond(to request: inout Request) -> Response {
        let routed = RoutingTable.lookup(request, in: trie)
        // The body as `body_json` conditions parsed it serves the handler too.
        if let parsed = routed.parsedJSONBody { request.context.parsedJSONBody = parsed }
        switch routed.lookup {
        case .matched(let route, let params):
            // A route with `methods:` named this method, so only routes without them need the check.
            if route.methods == nil, !route.answersEveryMethod, isUnknown(request.method) { return Response(status: 501) }
            request.params = params
            if labelsRequests { request.context.routePattern = route.pattern }
            return route.responder.respond(to: &request)
        case .methodNotAllowed where isUnknown(request.method), .notFound where isUnknown(request.method):
            return Response(status: 501)
        case .methodNotAllowed(let allow):
            // OPTIONS asks exactly this question: answer it rather than refuse it (RFC 9110 §9.3.7).
            return Response(status: request.method == "OPTIONS" ? 204 : 405, headers: ["Allow": allow.joined(separator: ", ")])
        case .notFound:
            return Response(status: 404)
        }
    }

    private func isUnknown(_ method: String) -> Bool {
        guard let knownMethods, method != "GET" else { return false }
        return !knownMethods.contains(method)
    }
}

/// The compiled configuration: plain data that the engine consults for every request.
public final class RoutingTable: Sendable {
    /// In file order.
    public let hosts: [CompiledHost]
    let hostSelector: HostSelector
    /// Metrics observer and admin listener, when the config asks for them.
    public let services: ServerServices
    /// Methods the server recognises: the standard ones and every method a route names
    /// (others are answered 501 before routing).
    public let knownMethods: Set<String>
    /// `Allow` for `OPTIONS *`.
    public let serverWideAllow: String
    /// Some route answers every method itself (`AnswersEveryMethod`): the engine lets unknown
    /// methods through to routing.
    public let routesUnknownMethods: Bool
    /// Some host or route has a `body_limit`, or a handler that streams bodies (else
    /// `bodyIntake(for:length:)` has nothing to find).
    let hasBodyLimits: Bool
    let hasStreamingRoutes: Bool
    /// Requests carry their host and route in their context (for metrics labels).
    let labelsRequests: Bool
    /// `services.observer`, kept apart: read for every answered request.
    public let observer: (any RequestObserver)?

    init(hosts: [CompiledHost], hostSelector: HostSelector, knownMethods: Set<String>, labelsRequests: Bool,
         services: ServerServices = ServerServices()) {
        self.hosts = hosts
        self.hostSelector = hostSelector
        self.services = services
        self.observer = services.observer
        self.labelsRequests = labelsRequests
        self.knownMethods = knownMethods
        self.serverWideAllow = knownMethods.subtracting(["CONNECT", "TRACE"]).sorted().joined(separator: ", ")
        self.hasBodyLimits = hosts.contains { $0.bodyLimit != nil || $0.routes.contains { $0.bodyLimit != nil } }
        self.hasStreamingRoutes = hosts.contains { $0.routes.contains { $0.bodyStreamer != nil } }
        self.routesUnknownMethods = hosts.contains { $0.routes.contains(where: \.answersEveryMethod) }
    }

    /// The same table, with `services` for the engine.
    public func with(_ services: ServerServices) -> RoutingTable {
        RoutingTable(hosts: hosts, hostSelector: hostSelector, knownMethods: knownMethods, labelsRequests: labelsRequests,
                     services: services)
    }

    /// Answers one complete request: chooses the host, runs its chain (middleware, router,
    /// route middleware, handler), and leaves in `request` what they learnt.
    public func respond(to request: inout Request) -> Response {
        if request.path == "*" {
            return Response(status: 200, headers: ["Allow": serverWideAllow])
        }
        if let acme = services.acmeChallenges, let answer = acme.answer(request) { return answer }
        let host = host(named: request.host)
        if labelsRequests { request.context.hostName = host.names.first ?? "*" }
        var response = host.responder.respond(to: &request)
        // Filled here while the host is at hand; an answer that comes later is filled by the engine.
        if ErrorResponses.needsBody(response) {
            ErrorResponses.fillBody(&response, accept: request.headers["Accept"], customPage: host.errorPages[response.status])
        }
        return response
    }

    /// Gives an error response without a body the small body of docs/configuration.md §12: the
    /// host's own page for that status, else HTML or JSON as the client prefers. `respond(to:)`
    /// does it for answers it returns; this is for answers that come later.
    public func fillErrorBody(_ response: inout Response, for request: Request) {
        guard ErrorResponses.needsBody(response) else { return }
        let page = request.path == "*" ? nil : host(named: request.host).errorPages[response.status]
        ErrorResponses.fillBody(&response, accept: request.headers["Accept"], customPage: page)
    }

    /// How the body of `request` (only its head has arrived) is taken in: the `body_limit` that
    /// applies — its route's when the head alone finds one, else its host's (routes told apart only
    /// by `body_json` are checked again by the middleware once the body is in) — and whether its
    /// route's handler takes it as it arrives (`StreamsRequestBody`; `length` nil: chunked).
    public func bodyIntake(for request: Request, length: Int?) -> BodyIntake {
        guard hasBodyLimits || hasStreamingRoutes else { return BodyIntake() }
        let host = host(named: request.host)
        guard case .matched(let route, _) = Self.lookup(request, in: host.trie).lookup else { return BodyIntake(limit: host.bodyLimit) }
        return BodyIntake(limit: route.bodyLimit, streamed: route.bodyStreamer?.streamsBody(ofLength: length) ?? false)
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

    /// The lookup, which entry it was when a route matched (for `explain`), and the body as JSON
    /// when a `body_json` condition had to read it.
    static func lookup(_ request: Request, in trie: RouteTrie)
        -> (lookup: RouteLookup, winner: RouteEntry?, parsedJSONBody: ParsedJSONBody?) {
        var finder = AcceptingRouteFinder()
        trie.forEachMatch(of: request, &finder)
        // Contract-level choice, as Go's ServeMux: a request for `/docs` when `/docs/` is a subtree
        // goes to that subtree (whose handler decides, e.g. static answers 301 to `/docs/`) unless
        // a pattern matches `/docs` itself exactly; a broader subtree such as `/` does not count.
        if finder.winner?.isExact != true, trie.hasTailsBelowRoot, request.path.utf8.last != UInt8(ascii: "/") {
            finder.wantsSubtreeRoots = true
            trie.forEachMatch(of: request, &finder)
        }
        let parsedJSONBody = finder.facts.parsedJSONBody
        if let winner = finder.winner { return (.matched(winner.entry.route, params: winner.parameters), winner.entry, parsedJSONBody) }
        guard !finder.allowed.isEmpty else { return (.notFound, nil, parsedJSONBody) }
        finder.allowed.insert("OPTIONS")
        return (.methodNotAllowed(allow: finder.allowed.sorted()), nil, parsedJSONBody)
    }
}

/// Finds the first route whose conditions all hold, among the matches of the path itself or,
/// with `wantsSubtreeRoots`, among subtrees rooted at the path plus a slash. Collects the methods
/// of the routes that failed only on the method, for the `Allow` header of a 405.
private struct AcceptingRouteFinder: RouteMatchVisitor {
    var wantsSubtreeRoots = false
    var winner: (entry: RouteEntry, parameters: [String: String], isExact: Bool)?
    var allowed: Set<String> = []
    private(set) var facts = RequestFacts()

    /// A CORS preflight (Fetch standard): `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    static func isPreflight(_ request: Request) -> Bool {
        request.method == "OPTIONS" && request.headers.contains("Access-Control-Request-Method") && request.headers.contains("Origin")
    }

    mutating func visit(_ match: RouteTrie.Match, of request: Request) -> Bool {
        guard (match.kind == .subtreeRootWithoutSlash) == wantsSubtreeRoots else { return false }
        for entry in match.routes {
            switch entry.verdict(request, &facts) {
            case .accepted:
                winner = (entry, entry.parameters(captures: match.captures, rest: match.rest, decoding: request.pathHasEncodedSeparators),
                          match.isExact)
                return true
            case .failsOnlyMethod where entry.route.answersPreflight && Self.isPreflight(request):
                // The route's own `cors` answers its preflights, whatever its `methods:` allow.
                winner = (entry, entry.parameters(captures: match.captures, rest: match.rest, decoding: request.pathHasEncodedSeparators),
                          match.isExact)
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
