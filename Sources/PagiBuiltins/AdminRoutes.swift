import PagiConfig
import PagiCore
import PagiMiddleware

/// The routing table of the admin listener (`server.admin`), built in code: `/metrics`,
/// `/health` and `/routes` (the text of `pagi-serve routes`), GET and HEAD only.
enum AdminRoutes {
    static func wantsMetrics(_ config: Config) -> Bool {
        config.server.adminListen != nil || config.hosts.contains { host in
            host.routes.contains { $0.handler.kind == .metrics }
        }
    }

    static func compile(serving table: RoutingTable, handlers: Builtins.Handlers) throws -> RoutingTable {
        let location = SourceLocation(file: "<admin>", line: 1, column: 1)
        let routesText = table.renderRoutes()
        var host = HostConfig(location: location)
        host.names = ["*"]
        host.isDefault = true
        host.routes = try [("/metrics", HandlerConfig.metrics), ("/health", .health), ("/routes", .health)].map { path, handler in
            var route = RouteConfig(pattern: try RoutePattern(parsing: path), pathLocation: location, handler: handler,
                                    handlerLocation: location, location: location)
            route.methods = ["GET", "HEAD"]
            return route
        }
        var config = Config()
        config.hosts = [host]
        // `/routes` is no handler of the config language: the text of `pagi-serve routes`, made here.
        let routes = FixedResponse(contentType: "text/plain; charset=utf-8", body: routesText)
        return try RoutingTable.compile(config, makeHandler: { $0.path == "/routes" ? routes : try handlers.make($0) },
                                        makeMiddleware: BuiltinMiddleware.make)
    }
}

/// The same small response for every request.
private struct FixedResponse: Handler {
    let contentType: String
    let body: String

    func handle(_ request: Request) -> Response {
        Response(status: 200, headers: ["Content-Type": contentType, "Cache-Control": "no-store"], body: .bytes(Array(body.utf8)))
    }
}
