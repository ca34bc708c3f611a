import PagiConfig

extension RoutingTable {
    /// Compiles the config. Pattern conflicts are errors naming both lines. Throws `ConfigError`
    /// with every diagnostic found. `makeHandler` may throw a `ConfigError` (e.g. a template that
    /// does not parse); its diagnostics join the others. `makeMiddleware` returns nil for middleware
    /// not supported yet: such an item is skipped but its name is kept for `routes` and `explain`.
    public static func compile(
        _ config: Config,
        makeHandler: (HandlerConfig, _ pattern: String, SourceLocation) throws -> any Handler,
        makeMiddleware: (MiddlewareItem) -> (any Middleware)?
    ) throws -> RoutingTable {
        var diagnostics: [Diagnostic] = []
        guard !config.hosts.isEmpty else {
            throw ConfigError(diagnostics: [Diagnostic(.error, "the configuration has no hosts", at: nil)])
        }
        var middleware = MiddlewareExpansion(stacks: config.middlewareStacks)
        var hosts: [CompiledHost] = []
        for host in config.hosts {
            let hostChain = middleware.chain(host.middleware, makeMiddleware)
            var routes: [CompiledRoute] = []
            var trie = RouteTrie()
            for routeConfig in host.routes {
                let pattern: RoutePattern
                do {
                    pattern = try RoutePattern(parsing: routeConfig.path)
                } catch {
                    diagnostics.append(Diagnostic(.error, "invalid path pattern '\(routeConfig.path)': \(error.message)",
                                                  at: routeConfig.pathLocation))
                    continue
                }
                let routeChain = hostChain + middleware.chain(routeConfig.middleware, makeMiddleware)
                guard let bodyPaths = parseBodyPaths(routeConfig, into: &diagnostics) else { continue }
                let handler: any Handler
                do {
                    handler = try makeHandler(routeConfig.handler, routeConfig.path, routeConfig.handlerLocation)
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
                    handler: handler,
                    middleware: routeChain.middleware, middlewareNames: routeChain.names, location: routeConfig.pathLocation)
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
            hosts.append(CompiledHost(names: host.names.map { $0.lowercased() }, isDefault: host.isDefault,
                                      errorPages: host.errorPages, location: host.location, routes: routes,
                                      middlewareNames: hostChain.names, trie: trie))
        }
        diagnostics += middleware.diagnostics
        if !diagnostics.isEmpty { throw ConfigError(diagnostics: diagnostics) }
        let defaultHost = hosts.firstIndex(where: \.isDefault) ?? 0
        return RoutingTable(hosts: hosts, hostSelector: HostSelector(names: hosts.map(\.names), defaultHost: defaultHost))
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
