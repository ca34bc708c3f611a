import PagiConfig
import PagiCore
import PagiMiddleware

/// The routing table of the admin listener (`server.admin`), built in code: `/metrics`,
/// `/health` and `/routes` (the text of `pagi-serve routes`), GET and HEAD only.
enum AdminRoutes {
    static func wantsMetrics(_ config: Config) -> Bool {
        config.server.adminListen != nil || config.hosts.contains { host in
            host.routes.contains { if case .other("metrics", _) = $0.handler { true } else { false } }
        }
    }

    static func compile(serving table: RoutingTable, makers: [String: HandlerFactory.Maker]) throws -> RoutingTable {
        let location = SourceLocation(file: "<admin>", line: 1, column: 1)
        let routesText = table.renderRoutes()
        var adminMakers = makers
        adminMakers["routes"] = { _, _, _ in FixedResponse(contentType: "text/plain; charset=utf-8", body: routesText) }
        if adminMakers["health"] == nil {
            adminMakers["health"] = { _, _, _ in FixedResponse(contentType: "application/json", body: #"{"status":"ok"}"#) }
        }
        var host = HostConfig(location: location)
        host.names = ["*"]
        host.isDefault = true
        host.routes = [("/metrics", "metrics", ConfigValue.string("prometheus")), ("/health", "health", .bool(true)),
                       ("/routes", "routes", .null)].map { path, handler, options in
            var route = RouteConfig(path: path, pathLocation: location, handler: .other(name: handler, options: options),
                                    handlerLocation: location, location: location)
            route.methods = ["GET", "HEAD"]
            return route
        }
        var config = Config()
        config.hosts = [host]
        return try HandlerFactory.compile(config, extensions: adminMakers, makeMiddleware: BuiltinMiddleware.make)
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
