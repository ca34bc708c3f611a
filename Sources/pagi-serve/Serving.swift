import Dispatch
import Foundation
import Logging
import PagiACME
import PagiBuiltins
import PagiConfig
import PagiCore
import PagiEngine
import Synchronization
import UnixSignals

/// One serving process (docs/operations.md): starts the server, answers signals — SIGHUP reloads,
/// SIGTERM/SIGINT drain and exit 0, a second one exits at once — reloads when `--watch` sees a
/// file of the configuration change, and keeps `pid_file`.
final class ServingProcess: Sendable {
    /// The configuration file; nil for `pagi-serve static`, which has none to re-read.
    private let path: String?
    private let overrides: ServeOptions
    private let compiler: Builtins.Compiler
    private let server: HTTPServer
    private let logger: Logger
    private let pidFile: PidFile?
    /// Serialises reloads (a signal and the watcher may ask at once) and holds the files watched.
    private let reloading = Mutex<[String]>([])
    private let stopping = Atomic<Bool>(false)
    /// A hot upgrade (SIGUSR2) is under way.
    private let upgrading = Atomic<Bool>(false)
    private let isWorker: Bool
    /// Obtains and renews ACME certificates (docs/tls.md) — in the process that owns the
    /// listeners: here unless this is a worker, whose supervisor does it.
    private let acme: ACMEManager?

    private init(path: String?, overrides: ServeOptions, compiler: Builtins.Compiler, server: HTTPServer,
                 logger: Logger, pidFile: PidFile?, files: [String], isWorker: Bool) {
        self.isWorker = isWorker
        acme = isWorker ? nil : ACMEManager(logger: logger) { [server, logger] in
            do {
                try server.refreshCertificates()
            } catch {
                logger.error("ACME: the new certificate cannot be used: \(error)")
            }
        }
        self.path = path
        self.overrides = overrides
        self.compiler = compiler
        self.server = server
        self.logger = logger
        self.pidFile = pidFile
        reloading.withLock { $0 = files }
    }

    /// Serves `config` (loaded from `path`, compiled by `compiler`) until told to stop; never
    /// returns. This process serves by itself, as a worker of a supervisor (when started by one),
    /// or becomes the supervisor of worker processes (`workers > 1`, `max_requests`).
    static func run(path: String?, config: Config, table: RoutingTable, compiler: Builtins.Compiler,
                    overrides: ServeOptions, watch: Bool) -> Never {
        let level = config.server.logLevel
        LoggingSystem.bootstrap { label in ServerLog.makeHandler(label: label, level: level) }
        var logger = Logger(label: "pagi-serve")
        let identity: RunAs?
        do {
            identity = try Privileges.workerIdentity(config.server.runAs)
        } catch {
            CLI.printErr("error: \(error)")
            Foundation.exit(1)
        }
        raiseDescriptorLimit(for: config, logger: logger)
        let link = WorkerLink.fromEnvironment()
        let predecessor = link == nil ? HotUpgrade.Predecessor.fromEnvironment() : nil
        if let link {
            logger[metadataKey: "worker"] = "\(getpid())"
            link.followSupervisor()
        } else if Supervisor.isWanted(config) {
            Supervisor.run(path: path, config: config, compiler: compiler, overrides: overrides, watch: watch,
                           predecessor: predecessor, logger: logger)
        }
        Task { [logger] in
            // Signals are trapped before the listeners open: a SIGTERM that arrives as soon as the
            // server says it is listening must not find the default action (death, exit 143).
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup, .sigusr2)
            let process: ServingProcess
            do {
                process = try start(path: path, config: config, table: table, compiler: compiler, overrides: overrides,
                                    link: link, identity: identity, predecessor: predecessor, logger: logger)
            } catch {
                CLI.printErr("error: \(error)")
                Foundation.exit(1)
            }
            if let link {
                link.tell(.ready)
                process.beat(to: link)
            } else {
                predecessor?.tellReady()
                SystemdNotify.ready(replacing: predecessor?.pid)
                if watch { process.watchFiles() }
            }
            for await signal in signals {
                switch signal {
                case .sighup: process.reload(reason: "SIGHUP")
                case .sigusr2: process.upgrade()
                default: process.stop(because: "\(signal)")
                }
            }
        }
        // The process ends by `exit`, from `stop` or a failed start.
        CLI.parkMainThread()
    }

    /// A worker (`link`) serves the sockets its supervisor opened, which also keeps the pid file,
    /// and becomes `identity` before it serves (only workers change identity: `Privileges`). A
    /// successor in a hot upgrade serves its `predecessor`'s sockets and takes over its pid file.
    private static func start(path: String?, config: Config, table: RoutingTable, compiler: Builtins.Compiler,
                              overrides: ServeOptions, link: WorkerLink?, identity: RunAs?, predecessor: HotUpgrade.Predecessor?,
                              logger: Logger) throws -> ServingProcess {
        let pidFile = link == nil ? try config.server.pidFile.map { try PidFile.claim($0, replacing: predecessor?.pid) } : nil
        do {
            let budget = link.flatMap { link in
                config.server.maxRequests > 0 ? RequestBudget(requests: WorkerLink.jittered(config.server.maxRequests)) {
                    link.tell(.recycle)
                } : nil
            }
            // A worker's sockets come from its supervisor; otherwise perhaps from systemd.
            let activated = link == nil && predecessor == nil
                ? try SocketActivation.listeners(for: config, environment: ProcessInfo.processInfo.environment) : nil
            let server = try HTTPServer(config: config, table: table, logger: logger, inherited: link?.listeners ?? activated,
                                        requestBudget: budget)
            if link != nil, let identity {
                try Privileges.drop(to: identity)
                logger.info("serving as user \(identity.user) (uid \(identity.uid), gid \(identity.gid))")
            }
            try server.start(predecessor: predecessor?.listeners ?? [])
            for socket in activated ?? [] {
                logger.info("\(socket.admin ? "admin listening" : "listening") on \(ListeningSockets.logName(socket.address)) (socket activation)")
            }
            let process = ServingProcess(path: path, overrides: overrides, compiler: compiler, server: server, logger: logger,
                                         pidFile: pidFile, files: config.files, isWorker: link != nil)
            process.acme?.manage(config)
            return process
        } catch {
            pidFile?.remove()
            throw error
        }
    }

    /// A worker's heartbeat: once a second, when every event loop still runs tasks.
    private func beat(to link: WorkerLink) {
        Thread.detachNewThread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 1)
                if server.loopsRespond(within: .seconds(2)) { link.tell(.heartbeat) }
            }
        }
    }

    /// The first SIGTERM/SIGINT drains (up to `timeouts.shutdown`) and exits 0; a second one,
    /// while draining, exits 1 at once. A hot upgrade's end drains the same way.
    private func stop(because cause: String) {
        let again = stopping.exchange(true, ordering: .relaxed)
        // A worker may get the stop twice — from its supervisor and from a service manager that
        // signals the whole group — and the supervisor enforces the deadline: no forced exit there.
        if again && isWorker { return }
        guard !again else {
            logger.warning("\(cause) again while draining: exiting now")
            pidFile?.remove()
            Foundation.exit(1)
        }
        logger.info("shutting down", metadata: ["cause": "\(cause)"])
        // Off the signal loop, so that a second signal is still seen while this drains.
        Thread.detachNewThread { [self] in
            server.shutdown()
            pidFile?.remove()
            Foundation.exit(0)
        }
    }

    /// SIGUSR2: hands the listeners to the executable now installed, and drains once it serves
    /// (`HotUpgrade`); if it fails, serves on.
    func upgrade() {
        guard !isWorker else {
            logger.warning("SIGUSR2 ignored: a hot upgrade is started by sending it to the supervisor (pid \(getppid()))")
            return
        }
        guard !stopping.load(ordering: .relaxed), !upgrading.exchange(true, ordering: .relaxed) else {
            logger.warning("SIGUSR2 ignored: an upgrade or a shutdown is already under way")
            return
        }
        logger.info("SIGUSR2: starting the installed executable for a hot upgrade")
        HotUpgrade.begin(sockets: server.listeningSockets()) { [self] outcome in
            switch outcome {
            case .ready(let pid):
                logger.info("hot upgrade: process \(pid) serves now; this one drains and exits")
                server.handOverSocketFiles()
                stop(because: "hot upgrade")
            case .failed(let reason):
                logger.error("hot upgrade failed: \(reason); still serving")
                pidFile?.rewrite()
                upgrading.store(false, ordering: .relaxed)
            }
        }
    }

    /// Re-reads and re-compiles the configuration; applies it when valid, else logs every
    /// diagnostic (`file:line:col`) and keeps serving the one in force.
    func reload(reason: String) {
        reloading.withLock { watched in
            guard !stopping.load(ordering: .relaxed) else { return }
            guard let path else {
                logger.info("no configuration file to reload", metadata: ["reason": "\(reason)"])
                return
            }
            logger.info("reloading configuration", metadata: ["reason": "\(reason)"])
            do {
                var config = try ConfigLoader.load(path: path)
                try CLI.applyOverrides(&config, options: overrides)
                let table = try compiler.compile(config)
                // Only a worker changes identity, and its supervisor replaces it for a new user;
                // this process can only refuse a file that no longer says who serves.
                let identity = isWorker ? nil : try Privileges.workerIdentity(config.server.runAs)
                var notes = try server.reload(config, table: table)
                if let identity { notes.append("user '\(identity.user)' needs worker processes: it applies at the next start") }
                ServerLog.setLevel(config.server.logLevel)
                for warning in config.warnings { logger.warning("\(warning)") }
                for note in notes { logger.warning("not applied until restart: \(note)") }
                watched = config.files
                acme?.manage(config)
                logger.info("configuration reloaded")
            } catch let error as ConfigError {
                let diagnostics = CLI.withCompilationFindings(error)
                for diagnostic in diagnostics { logger.error("\(diagnostic)") }
                let count = diagnostics.filter { $0.severity == .error }.count
                logger.error("reload refused (\(count) error\(count == 1 ? "" : "s")): still serving the previous configuration")
            } catch {
                logger.error("reload failed: \(error); still serving the previous configuration")
            }
        }
    }

    /// `--watch`: a reload when a file of the configuration changes.
    private func watchFiles() {
        let watcher = FileWatcher { [self] in reloading.withLock { $0 } }
        Thread.detachNewThread { [self] in
            watcher.run { changed in reload(reason: "\(changed) changed") }
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one, as Go's runtime and nginx's
/// `worker_rlimit_nofile` do: the usual soft limit (1024) is far below `limits.connections`, and a
/// server out of descriptors cannot even accept a connection to refuse it (docs/tuning.md). Warns
/// when even the hard limit is below what `limits.connections` asks for.
private func raiseDescriptorLimit(for config: Config, logger: Logger) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    let wanted = UInt64(config.server.limits.connections) + 64
    if config.server.limits.connections > 0 && UInt64(limit.rlim_cur) < wanted {
        logger.warning("limits.connections is \(config.server.limits.connections) but this process may open only \(limit.rlim_cur) descriptors: raise the limit (ulimit -n, systemd LimitNOFILE=) or lower limits.connections")
    }
}
