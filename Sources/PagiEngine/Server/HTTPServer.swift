import Dispatch
import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import PagiConfig
import PagiCore
import Synchronization

/// Wires sockets to the routing table: binds the listeners, runs the event loops, and shuts down
/// gracefully (stop accepting, let in-flight requests finish up to `timeouts.shutdown`).
public final class HTTPServer: Sendable {
    public let tables: RoutingTableBox
    private let context: ServerContext
    /// The admin listener's own context (its routing table is built in code), when configured.
    private let adminContext: ServerContext?
    private let boundAdmin = Mutex<SocketAddress?>(nil)
    private let group: MultiThreadedEventLoopGroup
    private let quiescing: ServerQuiescingHelper
    private let config: Config

    public init(config: Config, table: RoutingTable, logger: Logger) throws(EngineError) {
        self.config = config
        self.tables = RoutingTableBox(table)
        context = ServerContext(tables: tables, server: config.server, accessLog: try AccessLog(config.server.accessLog), logger: logger)
        // Admin traffic (scrapes, health checks) is neither logged nor counted in the metrics.
        adminContext = table.services.admin.map {
            ServerContext(tables: RoutingTableBox($0), server: config.server, accessLog: nil, logger: logger)
        }
        let threads = config.server.threads ?? max(1, System.coreCount / max(1, config.server.workers ?? System.coreCount))
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        quiescing = ServerQuiescingHelper(group: group)
    }

    /// Where the admin listener is bound, once `start()` returned.
    public var adminAddress: SocketAddress? { boundAdmin.withLock { $0 } }

    /// Binds every TCP listener (and the admin listener) and starts serving; returns the bound
    /// addresses of the listeners (port 0 → real port), without the admin one.
    @discardableResult
    public func start() throws(EngineError) -> [SocketAddress] {
        let bootstrap = makeBootstrap(context)
        var bound: [SocketAddress] = []
        for listener in config.server.listen {
            guard case .tcp = listener.address, !listener.tls else { continue }
            let address = try bind(bootstrap, to: listener.address)
            bound.append(address)
            context.logger.info("listening on http://\(Self.describe(address))")
        }
        guard !bound.isEmpty else {
            try? group.syncShutdownGracefully()
            throw EngineError("no listener could be started (only plain TCP listeners are supported in this release)")
        }
        if let adminContext, let admin = config.server.adminListen {
            let address = try bind(makeBootstrap(adminContext), to: admin.address)
            boundAdmin.withLock { $0 = address }
            context.logger.info("admin listening on http://\(Self.describe(address))")
        }
        return bound
    }

    private func makeBootstrap(_ context: ServerContext) -> ServerBootstrap {
        let quiescing = self.quiescing
        let limit = config.server.limits.connections
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // One read per wake-up and no kept receive buffer: see `IdleLightReadBuffers`.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: IdleLightReadBuffers())
            .childChannelInitializer { channel in
                let open = context.connections.wrappingIncrementThenLoad(ordering: .relaxed)
                context.observer?.connectionOpened()
                channel.closeFuture.whenComplete { _ in
                    context.connections.wrappingDecrement(ordering: .relaxed)
                    context.observer?.connectionClosed()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if limit > 0 && open > limit {
                        try pipeline.addHandler(OverLimitHandler())
                    } else {
                        try pipeline.addHandler(SlowReaderGuard(writeSeconds: context.server.timeouts.write))
                        try pipeline.addHandler(HTTPConnectionHandler(server: context))
                    }
                }
            }
    }

    /// Binds one TCP address; on failure shuts the event loops down (the server cannot start).
    private func bind(_ bootstrap: ServerBootstrap, to address: ListenConfig.Address) throws(EngineError) -> SocketAddress {
        do {
            guard case .tcp(let host, let port) = address else { throw EngineError("only TCP addresses are supported") }
            let channel: Channel
            if host.isEmpty {
                // `:port` = all interfaces: a dual-stack socket where IPv6 exists, else IPv4 only.
                channel = try (try? bootstrap.bind(host: "::", port: port).wait())
                    ?? bootstrap.bind(host: "0.0.0.0", port: port).wait()
            } else {
                channel = try bootstrap.bind(host: host, port: port).wait()
            }
            guard let bound = channel.localAddress else { throw EngineError("no local address") }
            return bound
        } catch {
            try? group.syncShutdownGracefully()
            throw EngineError("cannot listen on \(Self.describe(address)): \(error)")
        }
    }

    /// Stops accepting, asks every connection to finish its current request and close, waits up to
    /// `timeouts.shutdown`, then closes whatever is left. Blocks until done.
    public func shutdown() {
        let drained = group.next().makePromise(of: Void.self)
        quiescing.initiateShutdown(promise: drained)
        let done = DispatchSemaphore(value: 0)
        drained.futureResult.whenComplete { _ in done.signal() }
        let grace = config.server.timeouts.shutdown
        if grace > 0 {
            if done.wait(timeout: .now() + grace) == .timedOut {
                context.logger.warning("shutdown timeout reached; closing remaining connections")
            }
        } else {
            done.wait()
        }
        try? group.syncShutdownGracefully()
    }

    private static func describe(_ address: SocketAddress) -> String {
        let ip = address.ipAddress ?? "?"
        return (address.protocol == .inet6 ? "[\(ip)]" : ip) + ":\(address.port ?? 0)"
    }

    private static func describe(_ address: ListenConfig.Address) -> String {
        switch address {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}
