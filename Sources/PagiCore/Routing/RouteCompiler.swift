import Foundation
import PagiConfig

extension RoutingTable {
    /// Compiles the config. Pattern conflicts are errors naming both lines. Throws `ConfigError`
    /// with every diagnostic found. `makeHandler` may throw a `ConfigError` (e.g. a template that
    /// does not parse); its diagnostics join the others. `makeMiddleware` builds a fresh object
    /// for every use of an item, so two routes using one stack do not share, e.g., rate-limit buckets;
    /// server-wide middleware is built once and shared by every host. With `labelsRequests`,
    /// requests carry their host and route in their context, for metrics.
    public static func compile(
        _ config: Config,
        labelsRequests: Bool = false,
        makeHandler: (RouteConfig) throws -> any Handler,
        makeMiddleware: (MiddlewareSpec) -> any Middleware
    ) throws -> RoutingTable {
        var diagnostics: [Diagnostic] = []
        guard !config.hosts.isEmpty else {
            throw ConfigError(diagnostics: [Diagnostic(.error, "the configuration has no hosts", at: nil)])
        }
        var middleware = MiddlewareExpansion(stacks: config.middlewareStacks)
        let serverChain = middleware.chain(config.server.middleware, makeMiddleware)
        let knownMethods = Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT"]
            + config.hosts.flatMap { $0.routes.flatMap { methodSet($0.methods) ?? [] } })
        var built: [(host: HostConfig, chain: MiddlewareExpansion.Chain, routes: [CompiledRoute], trie: RouteTrie)] = []
        for host in config.hosts {
            let hostChain = serverChain + middleware.chain(host.middleware, makeMiddleware)
            var routes: [CompiledRoute] = []
            var trie = RouteTrie()
            for routeConfig in host.routes {
                let pattern = routeConfig.pattern
                let routeChain = middleware.chain(routeConfig.middleware, makeMiddleware)
                guard let bodyPaths = parseBodyPaths(routeConfig, into: &diagnostics) else { continue }
                let handler: any Handler
                do {
                    handler = try makeHandler(routeConfig)
                } catch let error as ConfigError {
                    diagnostics += error.diagnostics
                    continue
                } catch {
                    diagnostics.append(Diagnostic(.error, "\(error)", at: routeConfig.handlerLocation))
                    continue
                }
                let route = CompiledRoute(
                    pattern: routeConfig.path, methods: methodSet(routeConfig.methods), headers: routeConfig.headers,
                    query: routeConfig.query, bodyJSON: routeConfig.bodyJSON, handlerName: routeConfig.handler.name,
                    handler: handler, middleware: routeChain.middleware, middlewareNames: hostChain.names + routeChain.names,
                    bodyLimit: (hostChain + routeChain).bodyLimit, location: routeConfig.pathLocation)
                let restName: String? = if case .tail(let name) = pattern.ending { name } else { nil }
                let entry = RouteEntry(route: route, order: routes.count, conditionCount: routeConfig.conditionCount,
                                       parameterNames: pattern.parameterNames, restName: restName, bodyPaths: bodyPaths)
                if let other = trie.insert(entry, pattern: pattern, sameConditions: haveSameConditions) {
                    let message = "route pattern '\(route.pattern)' at \(route.location) conflicts with '\(other.route.pattern)' at \(other.route.location)"
                    diagnostics.append(Diagnostic(.error, message, at: route.location))
                    continue
                }
                routes.append(route)
            }
            built.append((host, hostChain, routes, trie))
        }
        // Only when some route answers every method do unknown methods reach the routers, which then
        // need the whole set (see `HostRouter.knownMethods`); otherwise they check nothing.
        let routesUnknownMethods = built.contains { $0.routes.contains(where: \.answersEveryMethod) }
        let hosts = built.map { host, chain, routes, trie in
            CompiledHost(names: host.names.map { $0.lowercased() }, isDefault: host.isDefault,
                         errorPages: readErrorPages(host, into: &diagnostics), location: host.location, routes: routes,
                         middleware: chain.middleware, middlewareNames: chain.names, bodyLimit: chain.bodyLimit, trie: trie,
                         labelsRequests: labelsRequests, knownMethods: routesUnknownMethods ? knownMethods : nil)
        }
        diagnostics += middleware.diagnostics
        if !diagnostics.isEmpty { throw ConfigError(diagnostics: diagnostics) }
        let defaultHost = hosts.firstIndex(where: \.isDefault) ?? 0
        return RoutingTable(hosts: hosts, hostSelector: HostSelector(names: hosts.map(\.names), defaultHost: defaultHost),
                            knownMethods: knownMethods, labelsRequests: labelsRequests)
    }

    /// Error pages are small files read with the rest of the config, so a reload brings new ones
    /// and a missing one is a config error, never a 500 at run time.
    private static func readErrorPages(_ host: HostConfig, into diagnostics: inout [Diagnostic]) -> [Int: [UInt8]] {
        var pages: [Int: [UInt8]] = [:]
        for (status, path) in host.errorPages.sorted(by: { $0.key < $1.key }) {
            guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
                diagnostics.append(Diagnostic(.error, "cannot read the error page for \(status) (missing, unreadable or over 1 MiB)",
                                              at: host.location))
                continue
            }
            pages[status] = [UInt8](data)
        }
        return pages
    }

    /// `HEAD` is accepted wherever `GET` is (§4.2.4).
    private static func methodSet(_ methods: [String]?) -> Set<String>? {
        guard let methods else { return nil }
        var set = Set(methods.map { $0.uppercased() })
        if set.contains("GET") { set.insert("HEAD") }
        return set
    }

    private static func parseBodyPaths(_ route: RouteConfig, into diagnostics: inout [Diagnostic])
        -> [(steps: [JSONPathStep], path: String, value: ConfigValue)]? {
        var parsed: [(steps: [JSONPathStep], path: String, value: ConfigValue)] = []
        for (path, value) in route.bodyJSON {
            guard let steps = JSONPathStep.parse(path) else {
                diagnostics.append(Diagnostic(.error, "invalid body_json path '\(path)' (expected e.g. $.user.role or $.items[0].id)",
                                              at: route.location))
                return nil
            }
            parsed.append((steps, path, value))
        }
        return parsed
    }

    /// Routes that would both accept exactly the same requests on the same pattern shape.
    private static func haveSameConditions(_ a: RouteEntry, _ b: RouteEntry) -> Bool {
        a.route.methods == b.route.methods && a.route.headers == b.route.headers && a.route.query == b.route.query
            && bodyConditions(a) == bodyConditions(b)
    }

    private static func bodyConditions(_ entry: RouteEntry) -> [String: ConfigValue] {
        Dictionary(entry.route.bodyJSON.map { ($0.path, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}
