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

/// Everything a connection needs that is shared by the whole server. Immutable after start; what
/// a reload changes lives in the routing table (docs/architecture.md).
final class ServerContext: Sendable {
    let tables: RoutingTableBox
    let server: ServerConfig
    let parserLimits: ParserLimits
    let trustedProxies: TrustedProxies
    let writer = ResponseWriter(serverHeader: "pagi-serve")
    let clock = LogClock()
    let accessLog: AccessLog?
    let logger: Logger
    let connections = ManagedAtomic<Int>(0)

    init(tables: RoutingTableBox, server: ServerConfig, accessLog: AccessLog?, logger: Logger) {
        self.tables = tables
        self.server = server
        self.parserLimits = ParserLimits(headerBytes: server.limits.headerBytes, uriBytes: server.limits.uriBytes,
                                         headerCount: server.limits.headers, bodyBytes: server.limits.bodyBytes)
        self.trustedProxies = TrustedProxies(server.trustedProxies)
        self.accessLog = accessLog
        self.logger = logger
    }

    /// Told about every connection (metrics); each request tells the observer of its own table.
    var observer: (any RequestObserver)? { tables.table.observer }

    /// The answer to a request that could not be parsed or validated.
    func errorResponse(_ error: ProtocolError, accept: String?) -> Response {
        var response = Response(status: error.status)
        ErrorResponses.fillBody(&response, accept: accept, customPage: nil)
        return response
    }
}
