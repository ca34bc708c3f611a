import ArgumentParser
import Dispatch
import Foundation
import Logging
import PagiBuiltins
import PagiConfig
import PagiCore
import PagiEngine
import PagiMiddleware

@main
struct PagiServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pagi-serve",
        abstract: "A web server whose whole behaviour is declared in one YAML file.",
        discussion: "Exit codes: 0 ok, 1 configuration errors, 2 usage errors.",
        subcommands: [Serve.self, Check.self, Routes.self, Explain.self, StaticDir.self, Record.self, HashPassword.self, Cert.self, Schema.self],
        defaultSubcommand: Serve.self
    )

    /// ArgumentParser exits 64 on usage errors; docs/cli.md promises 2.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every command that reads a config shares.
struct ConfigArgument: ParsableArguments {
    @Argument(help: "The configuration file.")
    var config: String = "config.yaml"
}

enum CLI {
    /// Parks the main thread for good while other threads serve. A semaphore rather than
    /// `dispatchMain()`, whose sigsuspend(2) valgrind cannot follow (`bench/instructions`).
    static func parkMainThread() -> Never {
        let never = DispatchSemaphore(value: 0)
        while true { never.wait() }
    }

    static func printErr(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Compiles a configuration made on the command line (`static`, `record`); exits 1 when it cannot.
    static func compileOrExit(_ config: Config, with compiler: Builtins.Compiler) -> RoutingTable {
        do {
            return try compiler.compile(config)
        } catch {
            printErr("error: \(error)")
            Foundation.exit(1)
        }
    }

    /// Loads and compiles; on errors prints every diagnostic and exits 1.
    /// `showWarnings`: false in a worker process, whose supervisor already showed them.
    static func loadAndCompile(_ path: String, compiler: Builtins.Compiler = Builtins.Compiler(),
                               showWarnings: Bool = true, sources: [String: String] = [:]) -> (Config, RoutingTable) {
        do {
            let config = try ConfigLoader.load(path: path, sources: sources)
            let table = try compiler.compile(config)
            var renderer = DiagnosticRenderer()
            if showWarnings { for warning in config.warnings { printErr(renderer.render(warning)) } }
            return (config, table)
        } catch let error as ConfigError {
            let diagnostics = withCompilationFindings(error)
            var renderer = DiagnosticRenderer()
            for diagnostic in diagnostics { printErr(renderer.render(diagnostic)) }
            let count = diagnostics.filter { $0.severity == .error }.count
            printErr("\(count) error\(count == 1 ? "" : "s") in configuration")
            Foundation.exit(1)
        } catch {
            printErr("error: \(error)")
            Foundation.exit(1)
        }
    }

    /// The loader's diagnostics plus what compiling the valid part finds (route conflicts), so
    /// one run reports every mistake. Ordered by file (as first seen), line and column.
    static func withCompilationFindings(_ error: ConfigError) -> [Diagnostic] {
        var diagnostics = error.diagnostics
        if let partial = error.partial, !partial.hosts.isEmpty {
            do {
                _ = try Builtins.compile(partial)
            } catch let more as ConfigError {
                diagnostics += more.diagnostics.filter { !diagnostics.contains($0) }
            } catch {}
        }
        let files = diagnostics.compactMap(\.location?.file).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return diagnostics.enumerated().sorted { a, b in
            func key(_ d: Diagnostic, _ i: Int) -> [Int] {
                guard let l = d.location else { return [Int.max, 0, 0, i] }
                return [files.firstIndex(of: l.file) ?? 0, l.line, l.column, i]
            }
            return key(a.element, a.offset).lexicographicallyPrecedes(key(b.element, b.offset))
        }.map(\.element)
    }

    /// Applies `--listen`, `--threads`, `--log-level` over the file's values (at start and at each reload).
    static func applyOverrides(_ config: inout Config, options: ServeOptions) throws {
        try applyOverrides(&config, listen: options.listen, threads: options.threads, logLevel: options.logLevel)
        if let workers = options.workers {
            if workers == "auto" {
                config.server.workers = nil
            } else {
                guard let count = Int(workers), count >= 1 else { throw ValidationError("--workers must be a number of at least 1, or 'auto'") }
                config.server.workers = count
            }
        }
        if let user = options.user {
            switch RunAs.resolve(user: user, group: options.group) {
            case .success(let runAs): config.server.runAs = runAs
            case .failure(let error): throw ValidationError("--\(error.key == .user ? "user" : "group"): \(error)")
            }
        } else if options.group != nil {
            throw ValidationError("--group needs --user")
        }
    }

    static func applyOverrides(_ config: inout Config, listen: [String], threads: String?, logLevel: String?) throws {
        if !listen.isEmpty {
            config.server.listen = try listen.map { item in
                guard let address = ListenAddress.parse(item) else {
                    throw ValidationError("invalid --listen address '\(item)' (expected host:port, [v6]:port or :port)")
                }
                return ListenConfig(address: address)
            }
        }
        if let threads {
            if threads == "auto" {
                config.server.threads = nil
            } else {
                guard let count = Int(threads), count >= 1 else { throw ValidationError("--threads must be a number of at least 1, or 'auto'") }
                config.server.threads = count
            }
        }
        if let logLevel {
            guard let level = LogLevel(rawValue: logLevel) else {
                throw ValidationError("--log-level must be one of debug, info, warn, error")
            }
            config.server.logLevel = level
        }
    }
}

struct ServeOptions: ParsableArguments {
    @Option(name: .customLong("listen"), help: "Address to listen on (host:port, [v6]:port, :port); repeatable, replaces the file's listen list.")
    var listen: [String] = []
    @Option(help: "Event-loop threads: a number or 'auto'.")
    var threads: String?
    @Option(name: .customLong("log-level"), help: "debug, info, warn or error.")
    var logLevel: String?
    @Flag(help: "Reload when the configuration or a file it names (includes, htpasswd, respond files, OpenAPI documents, error pages) changes.")
    var watch = false
    @Option(help: "Worker processes: a number or 'auto' (replaces the file's server.workers).")
    var workers: String?
    @Option(help: "The user (name or id) the workers serve as, once root has bound the listeners (replaces server.user).")
    var user: String?
    @Option(help: "Their group (name or id; by default the user's own; replaces server.group).")
    var group: String?
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve a configuration (the default command).")
    @OptionGroup var file: ConfigArgument
    @OptionGroup var options: ServeOptions

    func run() throws {
        let compiler = Builtins.Compiler()
        let isWorker = WorkerLink.fromEnvironment() != nil
        var (config, table) = CLI.loadAndCompile(file.config, compiler: compiler, showWarnings: !isWorker,
                                                 sources: isWorker ? WorkerLink.sourcesFromSupervisor() : [:])
        try CLI.applyOverrides(&config, options: options)
        ServingProcess.run(path: file.config, config: config, table: table, compiler: compiler, overrides: options, watch: options.watch)
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration; print every diagnostic; exit 0 when valid, 1 otherwise.")
    @OptionGroup var file: ConfigArgument

    func run() throws {
        let (config, table) = CLI.loadAndCompile(file.config)
        do {
            // Certificates and keys are read as the server would read them (docs/tls.md).
            try HTTPServer.validateCertificates(config)
        } catch {
            CLI.printErr("error: \(error)")
            Foundation.exit(1)
        }
        let routes = table.hosts.reduce(0) { $0 + $1.routeCount }
        print("\(file.config): ok (\(config.hosts.count) host\(config.hosts.count == 1 ? "" : "s"), \(routes) route\(routes == 1 ? "" : "s"), \(config.warnings.count) warning\(config.warnings.count == 1 ? "" : "s"))")
        for case let handler as any LoadReporting in table.hosts.flatMap(\.routes).map(\.handler) { print("  " + handler.loadReport) }
    }
}

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the compiled routing table.")
    @OptionGroup var file: ConfigArgument

    func run() throws {
        let (_, table) = CLI.loadAndCompile(file.config)
        print(table.renderRoutes(), terminator: "")
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show which host, route and middleware would serve a request, and why others did not.")
    @Argument(help: "The configuration file.") var config: String
    @Argument(help: "The request method, e.g. GET.") var method: String
    @Argument(help: "The request URL, e.g. http://localhost/docs/ or /docs/.") var url: String
    @Option(name: .customLong("header"), help: "A request header 'Name: value'; repeatable.") var headers: [String] = []

    func run() throws {
        let (_, table) = CLI.loadAndCompile(config)
        do {
            let request = try ExplainRequest.make(method: method, url: url, headers: headers)
            print(table.explain(request), terminator: "")
        } catch {
            // The engine refuses this request before routing; saying so is the explanation.
            print("request: \(method) \(url)\nresult: \(error)")
        }
    }
}

struct StaticDir: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "static", abstract: "Serve one directory with no configuration file.")
    @Argument(help: "The directory to serve.") var directory: String
    @OptionGroup var options: ServeOptions
    @Flag(help: "Show directory listings.") var listing = false
    @Option(name: .customLong("follow-symlinks"), help: "Symbolic links to follow: inside (those that stay in the directory), always, or never.")
    var followSymlinks = StaticConfig.Symlinks.inside.rawValue

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("'\(directory)' is not a directory")
        }
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        guard let symlinks = StaticConfig.Symlinks(rawValue: followSymlinks) else {
            throw ValidationError("--follow-symlinks must be inside, always or never")
        }
        var staticConfig = StaticConfig(root: root)
        staticConfig.listing = listing
        staticConfig.followSymlinks = symlinks
        let location = SourceLocation(file: "<command line>", line: 1, column: 1)
        var host = HostConfig(location: location)
        host.names = ["*"]
        host.isDefault = true
        host.routes = [RouteConfig(pattern: try RoutePattern(parsing: "/"), pathLocation: location, handler: .static(staticConfig),
                                   handlerLocation: location, location: location)]
        var config = Config()
        config.hosts = [host]
        guard !options.watch else { throw ValidationError("--watch needs a configuration file; `static` has none") }
        try CLI.applyOverrides(&config, options: options)
        let compiler = Builtins.Compiler()
        let table = CLI.compileOrExit(config, with: compiler)
        ServingProcess.run(path: nil, config: config, table: table, compiler: compiler, overrides: options, watch: false)
    }
}

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password",
        abstract: "Read a password on standard input (one trailing newline dropped) and print its bcrypt hash for basic_auth.")
    @Option(help: "bcrypt cost, 4–31: each step doubles the time a check takes (12 ≈ 0.25 s).") var cost = 12

    func run() throws {
        guard (4...31).contains(cost) else { throw ValidationError("--cost must be between 4 and 31") }
        var input = FileHandle.standardInput.readDataToEndOfFile()
        if input.last == UInt8(ascii: "\n") { input.removeLast() }
        if input.last == UInt8(ascii: "\r") { input.removeLast() }
        guard let password = String(data: input, encoding: .utf8), !password.isEmpty else {
            CLI.printErr("error: no password on standard input")
            Foundation.exit(1)
        }
        // bcrypt reads at most 72 bytes: a longer password would be cut without a word.
        guard password.utf8.count <= 72 else {
            CLI.printErr("error: bcrypt uses at most 72 bytes of a password; this one has \(password.utf8.count)")
            Foundation.exit(1)
        }
        guard let hash = PasswordHash.bcrypt(password, cost: cost) else {
            CLI.printErr("error: the system's crypt library could not make a bcrypt hash")
            Foundation.exit(1)
        }
        print(hash)
    }
}

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema (draft 2020-12) of the configuration file format, for editors and validators.")

    func run() throws {
        print(ConfigSchema.document.jsonText())
    }
}
