import Atomics
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import PagiConfig
import PagiCore
import Synchronization

/// Wires sockets to the routing table: binds the listeners, runs the event loops, applies a
/// reloaded configuration without dropping a connection, and shuts down gracefully (stop
/// accepting, let in-flight requests finish up to `timeouts.shutdown`). docs/operations.md.
public final class HTTPServer: Sendable {
    public let tables: RoutingTableBox
    private let contexts: Contexts
    private let listeners = Mutex<[ListenerKey: Listener]>([:])
    private let group: MultiThreadedEventLoopGroup
    private let threads: Int
    private let logger: Logger
    private let shutdownGrace = Mutex<Double>(0)
    /// The configuration `start()` opens the listeners of.
    private let initial: Config
    /// In a worker process, the listening sockets its supervisor opened: the worker serves them
    /// and leaves opening and closing listeners on reload to the supervisor.
    private let inherited: [InheritedListener]?
    /// Set once a successor serves the listeners (hot upgrade): their unix socket files are its now.
    private let handedOver = Atomic<Bool>(false)

    /// A listener is told apart by its address and whether it serves the admin table.
    private struct ListenerKey: Hashable {
        var address: ListenConfig.Address
        var admin: Bool
    }

    private struct Listener: Sendable {
        let channel: any Channel
        let address: ListenConfig.Address
        /// The listening socket, owned by `channel` (a copy of it is what a hot upgrade hands over).
        let descriptor: Int32
        let bound: SocketAddress
        /// One per listener: NIO's helper follows the connections of a single server channel.
        let quiescing: ServerQuiescingHelper
    }

    /// What connections accepted from now on are served with; a reload replaces both.
    private final class Contexts: Sendable {
        let serving: Mutex<ServerContext>
        /// The admin listener's own context (its routing table is built in code), when configured.
        let admin: Mutex<ServerContext?>
        /// The certificates of each TLS listener (docs/tls.md), re-read on reload.
        let certificates: Mutex<[ListenerKey: CertificateSelector]>
        /// The configuration they were read from, to read them again when ACME renews one.
        let certificateSource: Mutex<Config>
        /// The listeners that speak HTTP/2 (docs/http2.md): `server.http2` and their own `http2`.
        let http2: Mutex<Set<ListenerKey>>
        init(serving: ServerContext, admin: ServerContext?, certificates: [ListenerKey: CertificateSelector], of config: Config, http2: Set<ListenerKey>) {
            certificateSource = Mutex(config)
            self.serving = Mutex(serving)
            self.admin = Mutex(admin)
            self.certificates = Mutex(certificates)
            self.http2 = Mutex(http2)
        }
        func current(admin wanted: Bool) -> ServerContext? {
            wanted ? admin.withLock { $0 } : serving.withLock { $0 }
        }
    }

    /// `inherited`: serve these sockets instead of binding the config's listeners (a worker).
    /// `requestBudget`: counts the requests answered (`max_requests`).
    public init(config: Config, table: RoutingTable, logger: Logger, inherited: [InheritedListener]? = nil,
                requestBudget: RequestBudget? = nil) throws(EngineError) {
        tables = RoutingTableBox(table)
        initial = config
        self.inherited = inherited
        self.logger = logger
        let connections = ManagedAtomic(0)
        let serving = ServerContext(tables: tables, server: config.server, accessLog: try AccessLog(config.server.accessLog),
                                    logger: logger, connections: connections, requestBudget: requestBudget)
        contexts = Contexts(serving: serving, admin: Self.adminContext(config, table, logger: logger),
                            certificates: try Self.certificates(config), of: config, http2: Self.http2Listeners(config))
        threads = Self.threads(config.server)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        shutdownGrace.withLock { $0 = config.server.timeouts.shutdown }
    }

    private static func threads(_ server: ServerConfig) -> Int {
        server.threads ?? max(1, System.coreCount / max(1, server.workers ?? System.coreCount))
    }

    /// Admin traffic (scrapes, health checks) is neither logged nor counted in the metrics.
    private static func adminContext(_ config: Config, _ table: RoutingTable, logger: Logger) -> ServerContext? {
        table.services.admin.map { ServerContext(tables: RoutingTableBox($0), server: config.server, accessLog: nil, logger: logger) }
    }

    /// Where the admin listener is bound, once `start()` returned.
    public var adminAddress: SocketAddress? {
        listeners.withLock { $0.first { $0.key.admin }?.value.bound }
    }

    /// The bound addresses of the listeners (port 0 → real port), without the admin one.
    public var addresses: [SocketAddress] {
        listeners.withLock { $0.filter { !$0.key.admin }.map(\.value.bound) }
    }

    /// Binds every listener of the config (and the admin listener) and starts serving; returns
    /// the bound addresses of the listeners, without the admin one. `predecessor`: sockets a
    /// process this one replaces was listening on (hot upgrade, docs/operations.md): served in place
    /// of binding the listeners they match; those the config no longer names are closed.
    @discardableResult
    public func start(predecessor: [InheritedListener] = []) throws(EngineError) -> [SocketAddress] {
        do throws(EngineError) {
            let opened: [ListenerKey: Listener]
            if let inherited {
                opened = try adopt(inherited)
            } else {
                let wanted = Self.wanted(initial)
                guard wanted.keys.contains(where: { !$0.admin }) else {
                    throw EngineError("no listener could be started")
                }
                let passed = Dictionary(predecessor.map { (ListenerKey(address: $0.address, admin: $0.admin), $0) }) { first, _ in first }
                for (key, socket) in passed where wanted[key] == nil { close(socket.descriptor) }
                let taken = try adopt(passed.filter { wanted[$0.key] != nil }.map(\.value))
                opened = try taken.merging(open(wanted.filter { taken[$0.key] == nil }, backlog: initial.server.backlog)) { kept, _ in kept }
            }
            listeners.withLock { $0 = opened }
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        return addresses
    }

    /// Applies a configuration re-read from the same file (SIGHUP, `--watch`), compiled into
    /// `table` (docs/operations.md, *Reload*): new requests — the next one on an open keep-alive
    /// connection included — use the new table; connections accepted from now on use the new
    /// timeouts, limits and access log (the log file is opened anew, which also follows a log
    /// rotation); listeners the new file adds are opened, those it drops stop accepting and drain.
    /// Open connections, WebSockets and SSE streams stay open. When something cannot be applied
    /// (a listener cannot be bound, the log cannot be opened) nothing is: the old config stays.
    /// Returns what takes a restart to change.
    public func reload(_ config: Config, table: RoutingTable) throws(EngineError) -> [String] {
        let accessLog = try AccessLog(config.server.accessLog)
        let certificates = try Self.certificates(config)
        let current = listeners.withLock { $0 }
        // A worker keeps the sockets it inherited: its supervisor replaces workers when they change.
        let wanted = inherited == nil ? Self.wanted(config) : current.mapValues { ListenConfig(address: $0.address) }
        let added = try open(wanted.filter { current[$0.key] == nil }, backlog: config.server.backlog)
        let serving = contexts.serving.withLock { $0 }
        tables.replace(with: table)
        contexts.serving.withLock {
            $0 = ServerContext(tables: tables, server: config.server, accessLog: accessLog, logger: logger,
                               connections: serving.connections, requestBudget: serving.requestBudget)
        }
        contexts.admin.withLock { $0 = Self.adminContext(config, table, logger: logger) }
        contexts.certificateSource.withLock { source in
            source = config
            contexts.certificates.withLock { $0 = certificates }
        }
        contexts.http2.withLock { $0 = Self.http2Listeners(config) }
        shutdownGrace.withLock { $0 = config.server.timeouts.shutdown }
        let removed = listeners.withLock { open in
            open.merge(added) { old, _ in old }
            let gone = open.filter { wanted[$0.key] == nil }
            for key in gone.keys { open[key] = nil }
            return Array(gone.values)
        }
        for listener in removed {
            logger.info("stopped listening on \(name(listener))")
            stopServing(listener).whenComplete { [self] _ in release(listener) }
        }
        var restartNeeded: [String] = []
        if Self.threads(config.server) != threads {
            restartNeeded.append("threads (\(threads) → \(Self.threads(config.server))) changes at the next start")
        }
        return restartNeeded
    }

    /// Reads the certificates again — ACME obtained one (docs/tls.md): new connections get it, open
    /// ones keep theirs. A certificate that cannot be read leaves those in force.
    public func refreshCertificates() throws(EngineError) {
        // Under the lock of the configuration, so that a reload at the same time is not undone.
        try contexts.certificateSource.withLock { config throws(EngineError) in
            let certificates = try Self.certificates(config)
            contexts.certificates.withLock { $0 = certificates }
        }
    }

    /// Every listener of `config`.
    private static func wanted(_ config: Config) -> [ListenerKey: ListenConfig] {
        var wanted: [ListenerKey: ListenConfig] = [:]
        for listener in config.server.listen {
            wanted[ListenerKey(address: listener.address, admin: false)] = listener
        }
        if let admin = config.server.adminListen { wanted[ListenerKey(address: admin.address, admin: true)] = admin }
        return wanted
    }

    /// The certificates of every TLS listener of `config`, read now (docs/tls.md): by address, so
    /// that a worker, which serves sockets its supervisor opened, finds its own too.
    public static func validateCertificates(_ config: Config) throws(EngineError) {
        _ = try certificates(config)
    }

    private static func http2Listeners(_ config: Config) -> Set<ListenerKey> {
        guard config.server.http2 else { return [] }
        return Set(wanted(config).filter { $0.value.http2 }.keys)
    }

    private static func certificates(_ config: Config) throws(EngineError) -> [ListenerKey: CertificateSelector] {
        var selectors: [ListenerKey: CertificateSelector] = [:]
        for (key, listener) in wanted(config) {
            if let selector = try CertificateSelector(for: listener, in: config) { selectors[key] = selector }
        }
        return selectors
    }

    /// The name of a listener in the log: its address as bound (the port 0 asked for → the real one).
    private func name(_ listener: Listener, admin: Bool = false) -> String {
        guard case .tcp = listener.address else { return ListeningSockets.logName(listener.address) }
        let encrypted = contexts.certificates.withLock { $0[ListenerKey(address: listener.address, admin: admin)] != nil }
        return (encrypted ? "https://" : "http://") + Self.describe(listener.bound)
    }

    /// A unix socket's file goes with the listener, unless it was inherited (its supervisor's) or
    /// handed over to a successor.
    private func release(_ listener: Listener) {
        guard inherited == nil, !handedOver.load(ordering: .relaxed), case .unix(let path) = listener.address else { return }
        ListeningSockets.releaseUnixPath(path)
    }

    /// Binds each of `addresses`; when one fails, closes those already bound and throws.
    private func open(_ listeners: [ListenerKey: ListenConfig], backlog: Int) throws(EngineError) -> [ListenerKey: Listener] {
        var opened: [ListenerKey: Listener] = [:]
        for (key, config) in listeners.sorted(by: { !$0.key.admin && $1.key.admin }) {
            do throws(EngineError) {
                let listener = try bind(config, admin: key.admin, backlog: backlog)
                opened[key] = listener
                logger.info("\(key.admin ? "admin listening" : "listening") on \(name(listener, admin: key.admin))")
            } catch {
                for listener in opened.values {
                    listener.channel.close(promise: nil)
                    release(listener)
                }
                throw error
            }
        }
        return opened
    }

    /// `tcp`: false for a unix socket, where TCP options do not apply.
    private func makeBootstrap(quiescing: ServerQuiescingHelper, key: ListenerKey, backlog: Int, tcp: Bool) -> ServerBootstrap {
        let admin = key.admin
        let contexts = self.contexts
        let bootstrap = ServerBootstrap(group: group)
        return (tcp ? bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1) : bootstrap)
            .serverChannelOption(.backlog, value: Int32(backlog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            // One read per wake-up and no kept receive buffer: see `IdleLightReadBuffers`.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: IdleLightReadBuffers())
            .childChannelInitializer { channel in
                guard let context = contexts.current(admin: admin) else {
                    return channel.eventLoop.makeFailedFuture(EngineError("no admin table"))
                }
                let open = context.connections.wrappingIncrementThenLoad(ordering: .relaxed)
                context.observer?.connectionOpened()
                channel.closeFuture.whenComplete { _ in
                    context.connections.wrappingDecrement(ordering: .relaxed)
                    context.observer?.connectionClosed()
                }
                let limit = context.server.limits.connections
                let certificates = contexts.certificates.withLock { $0[key] }
                let http2 = contexts.http2.withLock { $0.contains(key) }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if limit > 0 && open > limit {
                        // A TLS client could not read a cleartext 503: it is closed without one.
                        if certificates != nil { channel.close(promise: nil) } else { try pipeline.addHandler(OverLimitHandler()) }
                        return
                    }
                    let session = certificates.map(TLSSession.init)
                    try pipeline.addHandler(HTTPConnectionHandler(server: context, tls: session, acceptsHTTP2Preface: http2 && session == nil))
                    try pipeline.addHandler(SlowReaderGuard(writeSeconds: context.server.timeouts.write))
                    if let session {
                        let upgrade: ((any Channel) throws -> Void)? = if http2 {
                            { channel in try HTTP2Connection.configure(channel, server: context, tls: session) }
                        } else {
                            nil
                        }
                        try TLSFrontDoor.install(on: channel, session: session, http2: upgrade)
                    }
                }
            }
    }

    /// Binds one listener (`ListeningSockets.open`: a TCP address, or a unix socket file — a stale
    /// one removed first, one a live server holds refused, its `mode` and `owner` applied) and
    /// serves it. Bound by hand rather than by NIO so that its descriptor is known: a hot upgrade
    /// hands it to the next process.
    private func bind(_ listener: ListenConfig, admin: Bool, backlog: Int) throws(EngineError) -> Listener {
        let descriptor = try ListeningSockets.open(listener, backlog: backlog)
        do {
            return try serve(InheritedListener(address: listener.address, admin: admin, descriptor: descriptor))
        } catch {
            close(descriptor)
            if case .unix(let path) = listener.address { ListeningSockets.releaseUnixPath(path) }
            throw EngineError("cannot listen on \(ListeningSockets.describe(listener.address)): \(error)")
        }
    }

    /// Serves a listening socket; from then on its channel owns the descriptor.
    private func serve(_ socket: InheritedListener) throws -> Listener {
        let quiescing = ServerQuiescingHelper(group: group)
        let isTCP = if case .tcp = socket.address { true } else { false }
        let channel = try makeBootstrap(quiescing: quiescing, key: ListenerKey(address: socket.address, admin: socket.admin),
                                        backlog: initial.server.backlog, tcp: isTCP)
            .withBoundSocket(socket.descriptor).wait()
        guard let bound = channel.localAddress else {
            channel.close(promise: nil)
            throw EngineError("no local address")
        }
        // NIO listens again on an adopted socket with its default backlog (128), before the
        // bootstrap's options apply: `server.backlog` is set here, last.
        guard listen(socket.descriptor, Int32(initial.server.backlog)) == 0 else {
            let reason = String(cString: strerror(errno))
            channel.close(promise: nil)
            throw EngineError("cannot set the backlog: \(reason)")
        }
        return Listener(channel: channel, address: socket.address, descriptor: socket.descriptor, bound: bound, quiescing: quiescing)
    }

    /// Serves sockets opened by another process: a supervisor, systemd, or the process this one replaces.
    private func adopt(_ sockets: [InheritedListener]) throws(EngineError) -> [ListenerKey: Listener] {
        var adopted: [ListenerKey: Listener] = [:]
        for socket in sockets {
            do {
                adopted[ListenerKey(address: socket.address, admin: socket.admin)] = try serve(socket)
            } catch {
                for listener in adopted.values { listener.channel.close(promise: nil) }
                throw EngineError("cannot serve the inherited socket \(socket.descriptor): \(error)")
            }
        }
        return adopted
    }

    /// Copies of the listening sockets, for a successor to serve (hot upgrade); the caller closes them.
    public func listeningSockets() -> [InheritedListener] {
        listeners.withLock { open in
            open.compactMap { key, listener in
                InheritedListener(address: key.address, admin: key.admin, descriptor: listener.descriptor).copied()
            }
        }
    }

    /// A successor serves the listeners now: leave their unix socket files in place on shutdown.
    public func handOverSocketFiles() {
        handedOver.store(true, ordering: .relaxed)
    }

    /// Whether every event loop runs a task within `timeout` (a worker's heartbeat: a loop stuck
    /// in a handler must not pass for a live worker).
    public func loopsRespond(within timeout: TimeAmount) -> Bool {
        let answered = DispatchGroup()
        for loop in group.makeIterator() {
            answered.enter()
            loop.execute { answered.leave() }
        }
        return answered.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds))) == .success
    }

    /// Stops accepting on `listener`, then asks its connections to finish and close; the future
    /// completes once they all have. Accepting stops first, and the listener closes only after
    /// one round through every event loop: NIO sets a connection it accepted up on the
    /// connection's own loop and closes it unanswered — a reset for a client whose connect had
    /// succeeded — when the listener closed meanwhile. Connections still queued in the kernel are
    /// left there for a process that shares the socket (a hot upgrade's successor, another worker).
    private func stopServing(_ listener: Listener) -> EventLoopFuture<Void> {
        let serverLoop = listener.channel.eventLoop
        let promise = serverLoop.makePromise(of: Void.self)
        listener.channel.setOption(.autoRead, value: false).flatMap { [group] in
            // Each loop runs its queued setups before this task, and their hop back to the
            // listener's loop is queued before this one's.
            EventLoopFuture.andAllComplete(group.makeIterator().map { $0.submit {} }, on: serverLoop)
        }.whenComplete { _ in
            listener.quiescing.initiateShutdown(promise: promise)
        }
        return promise.futureResult
    }

    /// Stops accepting, asks every connection to finish its current request and close (a WebSocket
    /// is closed with 1001, an SSE stream ends), waits up to `timeouts.shutdown`, then closes
    /// whatever is left. Blocks until done.
    public func shutdown() {
        let drained = DispatchGroup()
        // The listeners (and their quiescing helpers, which touch the loops when they go) are
        // released here, before the loops stop.
        for listener in listeners.withLock({ open in defer { open = [:] }; return Array(open.values) }) {
            drained.enter()
            stopServing(listener).whenComplete { [self] _ in
                release(listener)
                drained.leave()
            }
        }
        let grace = shutdownGrace.withLock { $0 }
        if grace > 0 {
            if drained.wait(timeout: .now() + grace) == .timedOut {
                logger.warning("shutdown timeout reached; closing remaining connections")
            }
        } else {
            drained.wait()
        }
        try? group.syncShutdownGracefully()
    }

    private static func describe(_ address: SocketAddress) -> String {
        let ip = address.ipAddress ?? "?"
        return (address.protocol == .inet6 ? "[\(ip)]" : ip) + ":\(address.port ?? 0)"
    }
}
