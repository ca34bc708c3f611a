import Foundation
import Logging
import PagiACME
import PagiBuiltins
import PagiConfig
import PagiEngine
import Synchronization
import UnixSignals

/// The master process of `workers > 1`, `max_requests` or workers that drop root's privileges
/// (docs/operations.md, *Workers*, *Privileges*): opens
/// every listener once, runs the worker processes on them, and keeps them running — a worker
/// that dies is replaced (with a growing delay when it keeps dying), one that stops sending its
/// heartbeat is killed and replaced, one that spent its `max_requests` is replaced by a new one
/// before it leaves. SIGHUP validates the file here first; SIGTTIN/SIGTTOU add or remove a worker;
/// SIGTERM/SIGINT drain every worker.
///
/// Workers are this same executable started again, their sockets passed as inherited descriptors
/// (`InheritedListener`) and a pipe back to this process for their messages (`WorkerMessage`).
final class Supervisor: @unchecked Sendable {
    // @unchecked: all state below is touched by the supervising thread only; signals reach it
    // through `commands`, behind a lock.
    private let path: String?
    private let overrides: ServeOptions
    private let compiler: Builtins.Compiler
    private let logger: Logger
    private let pidFile: PidFile?
    private let commands = Mutex<[Command]>([])
    /// The sources of SIGTTIN and SIGTTOU (a source stops when released).
    private var countSignals: [any DispatchSourceSignal] = []
    /// The configuration's files, for `--watch` (read on the watcher's thread).
    private let watched = Mutex<[String]>([])

    private var config: Config
    private var sockets: [InheritedListener] = []
    /// Sockets systemd passed (socket activation): their unix socket files are systemd's to remove.
    private var passedByActivation: Set<Int32> = []
    private var workers: [pid_t: Worker] = [:]
    private var wanted: Int
    /// The generation of workers that serves the current sockets and threads; older ones are retired.
    private var generation = 0
    private var quickDeaths = 0
    private var nextSpawn = Date.distantPast
    private var stoppingSince: Date?
    /// A hot upgrade (SIGUSR2) is under way.
    private var upgrading = false
    /// A successor serves the listeners: their unix socket files are its own now.
    private var handedOver = false
    /// The process this one replaces in a hot upgrade, told once every worker is ready.
    private var predecessor: HotUpgrade.Predecessor?
    /// Every first worker was ready once: the predecessor and systemd have been told.
    private var announcedReady = false
    /// The configuration files as last validated (`WorkerLink.writeSources`), for the workers to
    /// read instead of the files on disk, which may since hold a version a reload refused.
    private var sources: Int32?
    /// Obtains and renews the ACME certificates (docs/tls.md) for every worker.
    private var acme: ACMEManager?

    /// A heartbeat missing this long means the worker is hung.
    static let heartbeatLimit: TimeInterval = 10
    /// A worker that dies sooner than this after its start counts towards the respawn delay.
    static let quickDeath: TimeInterval = 5

    fileprivate enum Command: Sendable {
        case reload(String), stop, forceStop, addWorker, removeWorker, upgrade, upgraded(HotUpgrade.Outcome), newCertificate
    }

    private struct Worker {
        let pid: pid_t
        let generation: Int
        /// Read end of the worker's pipe (non-blocking).
        let messages: Int32
        let started: Date
        var lastHeartbeat: Date
        var ready = false
        var retiring = false
        /// The worker asked to be replaced (`max_requests`); the replacement is under way.
        var replaced = false
        /// A reload came before the worker handled signals: it gets its SIGHUP once ready.
        var reloadWhenReady = false
        var pending = ""
    }

    private init(path: String?, config: Config, overrides: ServeOptions, compiler: Builtins.Compiler,
                 logger: Logger, pidFile: PidFile?, predecessor: HotUpgrade.Predecessor?) {
        self.path = path
        self.predecessor = predecessor
        self.config = config
        self.overrides = overrides
        self.compiler = compiler
        self.logger = logger
        self.pidFile = pidFile
        wanted = Self.workerCount(config)
        sources = WorkerLink.writeSources(Self.workerSources(config))
        watched.withLock { $0 = config.files }
    }

    /// What workers load: the configuration's files as validated here, and the ACME certificates
    /// and keys as they are now — read here, since workers without privileges cannot.
    private static func workerSources(_ config: Config) -> [String: String] {
        var sources = config.sources
        for tls in config.hosts.compactMap(\.tls) where tls.acme != nil {
            for file in [tls.cert, tls.key] { sources[file] = try? String(contentsOfFile: file, encoding: .utf8) }
        }
        return sources
    }

    static func workerCount(_ config: Config) -> Int {
        config.server.workers ?? ProcessInfo.processInfo.activeProcessorCount
    }

    /// Whether `config` asks for a supervisor and worker processes rather than one serving process
    /// (a server that drops root's privileges has one even for one worker: `Privileges`).
    static func isWanted(_ config: Config) -> Bool {
        workerCount(config) > 1 || config.server.maxRequests > 0 || Privileges.workersDropPrivileges(config)
    }

    /// Supervises until told to stop; never returns.
    static func run(path: String?, config: Config, compiler: Builtins.Compiler, overrides: ServeOptions,
                    watch: Bool, predecessor: HotUpgrade.Predecessor?, logger: Logger) -> Never {
        Task {
            // SIGCHLD is not trapped (trapping sets SIG_IGN, and ignored children are reaped by the
            // kernel before `waitpid` could say how they ended): the loop reaps every 100 ms.
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup, .sigusr2)
            let supervisor: Supervisor
            do {
                let pidFile = try config.server.pidFile.map { try PidFile.claim($0, replacing: predecessor?.pid) }
                supervisor = Supervisor(path: path, config: config, overrides: overrides, compiler: compiler,
                                        logger: logger, pidFile: pidFile, predecessor: predecessor)
                // Certificates are read here first: a key that cannot be used stops the start
                // with its place in the file, not a loop of workers failing one after another.
                try HTTPServer.validateCertificates(config)
                if let worker = try Privileges.workerIdentity(config.server.runAs), let problem = ACMEStorage.unreachable(in: config, by: worker) {
                    throw EngineError(problem)
                }
                try supervisor.openSockets()
                try supervisor.prepareFiles(for: config)
            } catch {
                CLI.printErr("error: \(error)")
                Foundation.exit(1)
            }
            supervisor.trapCountSignals()
            supervisor.acme = ACMEManager(logger: logger) { [supervisor] in supervisor.send(.newCertificate) }
            supervisor.acme?.manage(config)
            Thread.detachNewThread { supervisor.supervise() }
            if watch { supervisor.watchFiles() }
            var stopping = false
            for await signal in signals {
                switch signal {
                case .sighup: supervisor.send(.reload("SIGHUP"))
                case .sigusr2: supervisor.send(.upgrade)
                default:
                    supervisor.send(stopping ? .forceStop : .stop)
                    stopping = true
                }
            }
        }
        CLI.parkMainThread()
    }

    private func send(_ command: Command) { commands.withLock { $0.append(command) } }

    /// SIGTTIN / SIGTTOU: one worker more / fewer. swift-service-lifecycle's `UnixSignal` does not
    /// name them, so Dispatch directly. Called once, before the supervising thread starts.
    private func trapCountSignals() {
        countSignals = [(SIGTTIN, Command.addWorker), (SIGTTOU, Command.removeWorker)].map { number, command in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in send(command) }
            source.resume()
            return source
        }
    }

    /// `--watch` in a supervisor: changes reload through the same path as SIGHUP.
    private func watchFiles() {
        let watcher = FileWatcher { [self] in watched.withLock { $0 } }
        Thread.detachNewThread { [self] in watcher.run { changed in send(.reload("\(changed) changed")) } }
    }

    /// What workers that drop root's privileges cannot make themselves: their access log file.
    private func prepareFiles(for config: Config) throws {
        if let identity = try Privileges.workerIdentity(config.server.runAs) {
            try Privileges.prepareAccessLog(config, for: identity)
        }
    }

    // MARK: - Sockets

    private func openSockets() throws {
        if let passed = predecessor?.listeners {
            sockets = try Self.open(config, keeping: passed)
            for socket in passed where !sockets.contains(socket) { close(socket.descriptor) }
        } else if let activated = try SocketActivation.listeners(for: config, environment: ProcessInfo.processInfo.environment) {
            sockets = activated
            passedByActivation = Set(activated.map(\.descriptor))
        } else {
            sockets = try Self.open(config, keeping: [])
        }
        for socket in sockets {
            logger.info("\(socket.admin ? "admin listening" : "listening") on \(ListeningSockets.logName(socket.address))")
        }
    }

    /// The listeners of `config`, reusing those of `kept` that it still names.
    private static func open(_ config: Config, keeping kept: [InheritedListener]) throws -> [InheritedListener] {
        var wanted: [(ListenConfig, Bool)] = config.server.listen.map { ($0, false) }
        if let admin = config.server.adminListen { wanted.append((admin, true)) }
        var opened: [InheritedListener] = []
        do {
            for (listener, admin) in wanted {
                if let existing = kept.first(where: { $0.address == listener.address && $0.admin == admin }) {
                    opened.append(existing)
                } else {
                    let descriptor = try ListeningSockets.open(listener, backlog: config.server.backlog)
                    opened.append(InheritedListener(address: listener.address, admin: admin, descriptor: descriptor))
                }
            }
        } catch {
            for socket in opened where !kept.contains(socket) { close(socket.descriptor) }
            throw error
        }
        guard opened.contains(where: { !$0.admin }) else {
            throw EngineError("no listener could be started")
        }
        return opened
    }

    // MARK: - The supervising loop

    private func supervise() -> Never {
        while true {
            for command in commands.withLock({ pending in defer { pending = [] }; return pending }) { handle(command) }
            readMessages()
            reap()
            killHungWorkers()
            if let since = stoppingSince {
                if workers.isEmpty { finish(status: 0) }
                let grace = config.server.timeouts.shutdown
                if grace > 0 && Date().timeIntervalSince(since) > grace + 5 {
                    logger.warning("workers still running after timeouts.shutdown: killing them")
                    for pid in workers.keys { kill(pid, SIGKILL) }
                }
            } else {
                keepWorkerCount()
            }
        }
    }

    private func handle(_ command: Command) {
        switch command {
        case .reload(let reason): reload(reason: reason)
        case .addWorker:
            wanted += 1
            logger.info("SIGTTIN: \(wanted) workers")
        case .removeWorker:
            if wanted > 1 { wanted -= 1 }
            logger.info("SIGTTOU: \(wanted) workers")
        case .stop:
            guard stoppingSince == nil else { return }
            logger.info("shutting down: draining \(workers.count) workers")
            stoppingSince = Date()
            for pid in workers.keys { kill(pid, SIGTERM) }
            // Once the workers stop accepting, new connections are refused rather than left
            // queued on sockets this process still holds.
            for socket in sockets { close(socket.descriptor) }
        case .forceStop:
            logger.warning("second stop signal while draining: exiting now")
            for pid in workers.keys { kill(pid, SIGKILL) }
            finish(status: 1)
        case .upgrade:
            guard stoppingSince == nil, !upgrading else {
                logger.warning("SIGUSR2 ignored: an upgrade or a shutdown is already under way")
                return
            }
            upgrading = true
            logger.info("SIGUSR2: starting the installed executable for a hot upgrade")
            HotUpgrade.begin(sockets: sockets.compactMap { $0.copied() }) { [self] outcome in send(.upgraded(outcome)) }
        case .upgraded(.ready(let pid)):
            logger.info("hot upgrade: process \(pid) serves now; this one drains its workers and exits")
            handedOver = true
            handle(.stop)
        case .newCertificate:
            // Workers read certificates as they start: a new generation replaces them one at a time.
            guard stoppingSince == nil else { return }
            if let old = sources { close(old) }
            sources = WorkerLink.writeSources(Self.workerSources(config))
            generation += 1
            logger.info("ACME: a new certificate: replacing the workers one at a time")
        case .upgraded(.failed(let reason)):
            logger.error("hot upgrade failed: \(reason); still serving")
            pidFile?.rewrite()
            upgrading = false
        }
    }

    private func finish(status: Int32) -> Never {
        for socket in sockets where !passedByActivation.contains(socket.descriptor) && !handedOver {
            if case .unix(let path) = socket.address { ListeningSockets.releaseUnixPath(path) }
        }
        pidFile?.remove()
        Foundation.exit(status)
    }

    /// Workers of the current generation that are not on their way out.
    private var serving: [Worker] { workers.values.filter { $0.generation == generation && !$0.retiring && !$0.replaced } }

    /// Starts workers up to the wanted count (one at a time, after any respawn delay) and retires
    /// the surplus and the older generations once the current one is ready.
    private func keepWorkerCount() {
        let current = serving
        if current.count < wanted && Date() >= nextSpawn && !workers.values.contains(where: { !$0.ready && !$0.retiring }) {
            spawn()
        } else if current.count > wanted, let oldest = current.min(by: { $0.started < $1.started }) {
            retire(oldest.pid, because: "fewer workers wanted")
        }
        // An older generation (or a replaced worker) leaves one at a time, when the ready workers of
        // the current one and the others still leaving are enough without it: its replacement
        // serves before it stops.
        let ready = serving.filter(\.ready).count
        let leaving = workers.values.filter { ($0.generation != generation || $0.replaced) && !$0.retiring }
        if let next = leaving.first, ready > 0 && ready + leaving.count - 1 >= wanted {
            retire(next.pid, because: next.replaced ? "max_requests reached" : "configuration changed")
        }
    }

    private func retire(_ pid: pid_t, because reason: String) {
        guard workers[pid]?.retiring == false else { return }
        workers[pid]?.retiring = true
        logger.info("retiring worker \(pid): \(reason)")
        kill(pid, SIGTERM)
    }

    private func spawn() {
        var channel: [Int32] = [0, 0]
        guard pipe(&channel) == 0 else {
            logger.error("cannot start a worker: no pipe (\(String(cString: strerror(errno))))")
            nextSpawn = Date().addingTimeInterval(1)
            return
        }
        let (readEnd, writeEnd) = (channel[0], channel[1])
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        var environment = ProcessInfo.processInfo.environment
        for key in [HotUpgrade.listenersKey, HotUpgrade.notifyKey, HotUpgrade.predecessorKey] { environment[key] = nil }
        environment[WorkerMessage.supervisorKey] = String(getpid())
        // Its own process group: a Ctrl-C in the terminal reaches the supervisor alone, which
        // then stops the workers in order.
        let others = [(writeEnd, WorkerMessage.environmentKey)] + (sources.map { [($0, WorkerLink.sourcesKey)] } ?? [])
        let started = ProcessLauncher.spawnServer(Self.executable, sockets: sockets, socketsKey: InheritedListener.environmentKey,
                                                  others: others, environment: environment, ownProcessGroup: true)
        close(writeEnd)
        guard case .success(let pid) = started else {
            close(readEnd)
            if case .failure(let error) = started { logger.error("cannot start a worker: \(error)") }
            nextSpawn = Date().addingTimeInterval(1)
            return
        }
        let now = Date()
        workers[pid] = Worker(pid: pid, generation: generation, messages: readEnd, started: now, lastHeartbeat: now)
        logger.info("worker \(pid) started")
    }

    /// The running executable itself: `/proc/self/exe` still starts it after a package upgrade
    /// replaced the file (the path it points to then ends in " (deleted)").
    private static var executable: String {
        FileManager.default.fileExists(atPath: "/proc/self/exe") ? "/proc/self/exe" : CommandLine.arguments[0]
    }

    /// Reads what the workers sent; waits up to 100 ms for something to arrive.
    private func readMessages() {
        var polled = workers.values.map { pollfd(fd: $0.messages, events: Int16(POLLIN), revents: 0) }
        guard !polled.isEmpty else {
            Thread.sleep(forTimeInterval: 0.1)
            return
        }
        guard poll(&polled, nfds_t(polled.count), 100) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 512)
        for entry in polled where entry.revents != 0 {
            guard let pid = workers.first(where: { $0.value.messages == entry.fd })?.key else { continue }
            let count = read(entry.fd, &buffer, buffer.count)
            guard count > 0 else { continue }
            workers[pid]?.pending += String(decoding: buffer[..<count], as: UTF8.self)
            while let text = workers[pid]?.pending, let newline = text.firstIndex(of: "\n") {
                workers[pid]?.pending = String(text[text.index(after: newline)...])
                received(WorkerMessage(rawValue: String(text[..<newline])), from: pid)
            }
        }
    }

    private func received(_ message: WorkerMessage?, from pid: pid_t) {
        switch message {
        case .ready:
            workers[pid]?.ready = true
            workers[pid]?.lastHeartbeat = Date()
            if workers[pid]?.reloadWhenReady == true { kill(pid, SIGHUP) }
            if !announcedReady, serving.filter(\.ready).count >= wanted {
                announcedReady = true
                predecessor?.tellReady()
                SystemdNotify.ready(replacing: predecessor?.pid)
                predecessor = nil
            }
        case .heartbeat:
            workers[pid]?.lastHeartbeat = Date()
        case .recycle:
            guard workers[pid]?.replaced == false, workers[pid]?.retiring == false else { return }
            logger.info("worker \(pid) reached max_requests: starting its replacement")
            workers[pid]?.replaced = true
        case nil:
            break
        }
    }

    /// Collects the workers that ended, says why, and plans a replacement for an unexpected death.
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            close(worker.messages)
            let how = ProcessLauncher.describe(status: status)
            if worker.retiring || stoppingSince != nil {
                logger.info("worker \(pid) stopped (\(how))")
                continue
            }
            let lived = Date().timeIntervalSince(worker.started)
            // A crash loop is workers that die before they serve (a file they cannot load, a port
            // they cannot use). One that served and was killed — `max_requests` keeps workers young —
            // is replaced at once.
            quickDeaths = !worker.ready && lived < Self.quickDeath ? quickDeaths + 1 : 0
            let delay = quickDeaths == 0 ? 0 : min(30, 0.5 * pow(2, Double(quickDeaths - 1)))
            nextSpawn = Date().addingTimeInterval(delay)
            let plan = delay > 0 ? "replacing it in \(delay) s (it keeps dying)" : "replacing it"
            logger.error("worker \(pid) \(how) after \(String(format: "%.1f", lived)) s: \(plan)")
        }
    }

    private func killHungWorkers() {
        let now = Date()
        // A worker that never said it is ready counts from its start.
        for worker in workers.values where !worker.retiring && now.timeIntervalSince(worker.lastHeartbeat) > Self.heartbeatLimit {
            logger.error("worker \(worker.pid) hung (no heartbeat for \(Int(Self.heartbeatLimit)) s): killing it")
            kill(worker.pid, SIGKILL)
            workers[worker.pid]?.lastHeartbeat = now
        }
    }

    // MARK: - Reload

    /// Validates the file here; when valid, the workers reload it themselves (SIGHUP), or — when
    /// the listeners, threads or user changed — a new generation of workers replaces the old one, one
    /// worker at a time.
    private func reload(reason: String) {
        guard stoppingSince == nil else { return }
        guard let path else {
            logger.info("no configuration file to reload", metadata: ["reason": "\(reason)"])
            return
        }
        logger.info("reloading configuration", metadata: ["reason": "\(reason)"])
        let next: Config
        do {
            var loaded = try ConfigLoader.load(path: path)
            try CLI.applyOverrides(&loaded, options: overrides)
            _ = try compiler.compile(loaded)
            try HTTPServer.validateCertificates(loaded)
            try prepareFiles(for: loaded)
            next = loaded
        } catch let error as ConfigError {
            let diagnostics = CLI.withCompilationFindings(error)
            for diagnostic in diagnostics { logger.error("\(diagnostic)") }
            let count = diagnostics.filter { $0.severity == .error }.count
            logger.error("reload refused (\(count) error\(count == 1 ? "" : "s")): still serving the previous configuration")
            return
        } catch {
            logger.error("reload failed: \(error); still serving the previous configuration")
            return
        }
        // Workers that dropped root's privileges may not read the certificates and keys again: new
        // workers get them from this process instead (docs/operations.md, *Privileges*).
        let rolls = Self.listenersAndThreads(next) != Self.listenersAndThreads(config)
            || Privileges.workersDropPrivileges(next) && next.server.listen.contains(where: \.tls)
        if rolls {
            let kept = sockets
            do {
                sockets = try Self.open(next, keeping: kept)
            } catch {
                logger.error("reload failed: \(error); still serving the previous configuration")
                return
            }
            for socket in kept where !sockets.contains(socket) {
                close(socket.descriptor)
                if case .unix(let path) = socket.address, !passedByActivation.contains(socket.descriptor) {
                    ListeningSockets.releaseUnixPath(path)
                }
            }
            generation += 1
            logger.info("listeners, threads, user or certificates of workers without privileges changed: replacing the workers one at a time")
        } else {
            // A worker that does not handle signals yet would die of SIGHUP's default action.
            for worker in workers.values where !worker.retiring {
                if worker.ready { kill(worker.pid, SIGHUP) } else { workers[worker.pid]?.reloadWhenReady = true }
            }
        }
        config = next
        if let old = sources { close(old) }
        sources = WorkerLink.writeSources(Self.workerSources(next))
        acme?.manage(next)
        wanted = Self.workerCount(next)
        watched.withLock { $0 = next.files }
        logger.info("configuration reloaded")
    }

    /// What a worker cannot change while it runs: a change replaces the workers.
    private static func listenersAndThreads(_ config: Config) -> [String] {
        config.server.listen.map { "\($0.address) \(String(describing: $0.socketMode)) \(String(describing: $0.socketOwner))" }
            + ["admin \(String(describing: config.server.adminListen?.address))", "threads \(String(describing: config.server.threads))",
               "user \(String(describing: config.server.runAs.map { ($0.uid, $0.gid) }))"]
    }
}

/// What a worker tells its supervisor, one line each on its pipe.
enum WorkerMessage: String {
    /// Serving.
    case ready
    /// Every event loop answered within the last interval.
    case heartbeat
    /// `max_requests` answered: replace me.
    case recycle

    static let environmentKey = "PAGI_WORKER_PIPE"
    static let supervisorKey = "PAGI_SUPERVISOR_PID"
}
