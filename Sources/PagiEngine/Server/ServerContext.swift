import Atomics
import Logging
import NIOCore
import PagiConfig
import PagiCore

/// The routing table behind one atomic reference, so a reload can swap it while connections keep
/// running: each request loads the reference once and uses that table to the end.
public final class RoutingTableBox: Sendable {
    private let current: ManagedAtomic<RoutingTable>
    public init(_ table: RoutingTable) { current = ManagedAtomic(table) }
    public var table: RoutingTable { current.load(ordering: .acquiring) }
    public func replace(with table: RoutingTable) { current.store(table, ordering: .releasing) }
}

extension RoutingTable: AtomicReference {}

/// Everything a connection needs that is shared by the whole server. Immutable after start.
final class ServerContext: Sendable {
    let tables: RoutingTableBox
    let server: ServerConfig
    let parserLimits: ParserLimits
    let validation: RequestValidation
    let writer = ResponseWriter(serverHeader: "pagi-serve")
    let clock = LogClock()
    let accessLog: AccessLog?
    let logger: Logger
    /// Host error pages, read once at start: path → contents.
    let errorPages: [String: [UInt8]]
    let connections = ManagedAtomic<Int>(0)
    /// Told about every answered request and connection (metrics); nil costs nothing.
    let observer: (any RequestObserver)?
    /// `Allow` for `OPTIONS *`.
    let serverWideAllow: String

    init(tables: RoutingTableBox, server: ServerConfig, knownMethods: Set<String>, accessLog: AccessLog?,
         logger: Logger, errorPages: [String: [UInt8]]) {
        self.tables = tables
        self.observer = tables.table.services.observer
        self.server = server
        self.parserLimits = ParserLimits(headerBytes: server.limits.headerBytes, uriBytes: server.limits.uriBytes,
                                         headerCount: server.limits.headers, bodyBytes: server.limits.bodyBytes)
        self.validation = RequestValidation(knownMethods: knownMethods)
        self.accessLog = accessLog
        self.logger = logger
        self.errorPages = errorPages
        self.serverWideAllow = knownMethods.subtracting(["CONNECT", "TRACE"]).sorted().joined(separator: ", ")
    }

    /// Routes and answers one complete request (filling in its route parameters). Runs on the
    /// connection's event loop.
    func respond(to request: inout Request) -> Response {
        if request.path == "*" {
            return Response(status: 200, headers: ["Allow": serverWideAllow])
        }
        let table = tables.table
        let (host, lookup) = table.route(request)
        var response: Response
        switch lookup {
        case .matched(let route, let params):
            request.params = params
            response = Self.run(route.middleware[...], handler: route.handler, request: request)
        case .methodNotAllowed(let allow):
            // OPTIONS asks exactly this question: answer it rather than refuse it (RFC 9110 §9.3.7).
            response = Response(status: request.method == "OPTIONS" ? 204 : 405,
                                headers: ["Allow": allow.joined(separator: ", ")])
        case .notFound:
            response = Response(status: 404)
        }
        if ErrorResponses.needsBody(response) {
            let page = host.errorPages[response.status].flatMap { errorPages[$0] }
            ErrorResponses.fillBody(&response, accept: request.headers["Accept"], customPage: page)
        }
        if observer != nil {
            let route: String? = if case .matched(let matched, _) = lookup { matched.pattern } else { nil }
            response.servedBy = ServedBy(host: host.names.first ?? "*", route: response.servedBy?.route ?? route)
        }
        return response
    }

    private static func run(_ chain: ArraySlice<any Middleware>, handler: any Handler, request: Request) -> Response {
        guard let first = chain.first else { return handler.handle(request) }
        return first.handle(request) { run(chain.dropFirst(), handler: handler, request: $0) }
    }

    /// The answer to a request that could not be parsed or validated.
    func errorResponse(_ error: ProtocolError, accept: String?) -> Response {
        var response = Response(status: error.status)
        ErrorResponses.fillBody(&response, accept: accept, customPage: nil)
        return response
    }

    /// Client address for logs and handlers: the peer, or what a trusted proxy says it forwarded
    /// (`Forwarded` per RFC 7239, else `X-Forwarded-For`).
    func clientAddress(peer: SocketAddress?, headers: HeaderFields) -> String {
        guard let peer, let ip = peer.ipAddress else { return "-" }
        guard !server.trustedProxies.isEmpty, Self.isTrusted(peer, server.trustedProxies) else { return ip }
        let hops: [String]
        if let forwarded = headers["Forwarded"] {
            hops = forwarded.split(separator: ",").compactMap { element in
                element.split(separator: ";").lazy.map { $0.trimmingOWS }
                    .first { $0.lowercased().hasPrefix("for=") }
                    .map { Self.nodeAddress(String($0.dropFirst(4))) }
            }
        } else if let forwardedFor = headers["X-Forwarded-For"] {
            hops = forwardedFor.split(separator: ",").map { $0.trimmingOWS }
        } else {
            return ip
        }
        // Walk from the right: the first hop that is not itself a trusted proxy is the client.
        for hop in hops.reversed() where !hop.isEmpty {
            guard let address = try? SocketAddress(ipAddress: hop, port: 0) else { return ip }
            if !Self.isTrusted(address, server.trustedProxies) { return hop }
        }
        return hops.first ?? ip
    }

    /// `"[2001:db8::1]:4711"` → `2001:db8::1`; `192.0.2.60:80` → `192.0.2.60` (RFC 7239 §6).
    private static func nodeAddress(_ raw: String) -> String {
        var node = Substring(raw)
        if node.hasPrefix("\""), node.hasSuffix("\""), node.count >= 2 { node = node.dropFirst().dropLast() }
        if node.hasPrefix("["), let close = node.firstIndex(of: "]") {
            return String(node[node.index(after: node.startIndex)..<close])
        }
        if let colon = node.firstIndex(of: ":") { node = node[..<colon] }
        return String(node)
    }

    private static func isTrusted(_ address: SocketAddress, _ cidrs: [CIDR]) -> Bool {
        let bytes: [UInt8]
        switch address {
        case .v4(let a):
            bytes = withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a):
            bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        default:
            return false
        }
        return cidrs.contains { $0.contains(bytes) }
    }
}
