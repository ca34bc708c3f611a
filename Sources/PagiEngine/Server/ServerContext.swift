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

/// Everything a connection needs that is shared by the whole server, fixed when the connection
/// is accepted: a reload makes a new context for the connections accepted after it (timeouts,
/// limits, access log), while the routing table, behind `tables`, changes for every connection
/// at its next request (docs/architecture.md).
final class ServerContext: Sendable {
    let tables: RoutingTableBox
    let server: ServerConfig
    let parserLimits: ParserLimits
    let trustedProxies: TrustedProxies
    let writer: ResponseWriter
    let clock = LogClock()
    let accessLog: AccessLog?
    let logger: Logger
    /// Open connections of the whole server (`limits.connections`), shared by every context.
    let connections: ManagedAtomic<Int>
    /// Counts answered requests for `max_requests`, when set; shared by every context.
    let requestBudget: RequestBudget?

    init(tables: RoutingTableBox, server: ServerConfig, accessLog: AccessLog?, logger: Logger,
         connections: ManagedAtomic<Int> = ManagedAtomic(0), requestBudget: RequestBudget? = nil) {
        self.requestBudget = requestBudget
        self.tables = tables
        self.server = server
        self.parserLimits = ParserLimits(headerBytes: server.limits.headerBytes, uriBytes: server.limits.uriBytes,
                                         headerCount: server.limits.headers, bodyBytes: server.limits.bodyBytes)
        self.trustedProxies = TrustedProxies(server.trustedProxies)
        self.writer = ResponseWriter(serverHeader: server.serverHeader ? "pagi-serve" : nil)
        self.accessLog = accessLog
        self.logger = logger
        self.connections = connections
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

/// `max_requests` (docs/operations.md, *Workers*): counts the requests a worker answers and says
/// once when the budget is spent, so the supervisor can replace the worker.
public final class RequestBudget: Sendable {
    private let remaining: ManagedAtomic<Int>
    private let spent: @Sendable () -> Void

    public init(requests: Int, spent: @escaping @Sendable () -> Void) {
        remaining = ManagedAtomic(requests)
        self.spent = spent
    }

    func spend() {
        if remaining.wrappingDecrementThenLoad(ordering: .relaxed) == 0 { spent() }
    }
}
