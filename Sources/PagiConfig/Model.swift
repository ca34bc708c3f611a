// The typed configuration model produced by `ConfigLoader`. Plain data: no NIO, no file I/O.
// Every value that came from the file keeps the `SourceLocation` of its YAML node so that
// later stages (route compilation, `explain`, warnings) can point back at the file.

/// A position in a configuration file (1-based line and column).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// One error or warning, printed as `file:line:col: error: message`.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible, Error {
    public enum Severity: String, Sendable { case error, warning }
    public var severity: Severity
    public var location: SourceLocation?
    public var message: String
    public init(_ severity: Severity, _ message: String, at location: SourceLocation?) {
        self.severity = severity
        self.message = message
        self.location = location
    }
    public var description: String {
        if let location { return "\(location): \(severity.rawValue): \(message)" }
        return "\(severity.rawValue): \(message)"
    }
}

/// Thrown by the loader when at least one error was found; carries every diagnostic of the run.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    /// What could be built despite the errors, so later stages (route compilation) can report
    /// their own findings in the same run instead of one fix-and-retry round later.
    public var partial: Config?
    public init(diagnostics: [Diagnostic], partial: Config? = nil) {
        self.diagnostics = diagnostics
        self.partial = partial
    }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

public struct Config: Sendable {
    public var server = ServerConfig()
    public var tls: TLSConfig?
    /// `memory` or a `redis://` URL.
    public var pubsub: String = "memory"
    /// Named middleware stacks (top-level `middleware:`), referenced by name from host/route lists.
    public var middlewareStacks: [String: [MiddlewareItem]] = [:]
    public var hosts: [HostConfig] = []
    /// Every file the configuration depends on, for `--watch`: the main file first, then
    /// includes, htpasswd files, `respond` files, OpenAPI documents and error pages.
    public var files: [String] = []
    /// The text of each configuration file read (main file and includes), by absolute path.
    public var sources: [String: String] = [:]
    /// Non-fatal findings (e.g. `'workers' is not supported yet`), to be printed at start-up.
    public var warnings: [Diagnostic] = []
    public init() {}
}

public struct ListenConfig: Sendable, Hashable {
    public enum Address: Sendable, Hashable {
        /// `host` is "" for `:port` (all interfaces); IPv6 literals are stored without brackets.
        case tcp(host: String, port: Int)
        case unix(path: String)
    }
    public var address: Address
    public var tls: Bool = false
    /// `tls: {cert, key, …}` on the listener itself: used for every name it serves, before the
    /// hosts' own certificates and the top-level one.
    public var tlsSettings: TLSConfig?
    public var http2: Bool = true
    public var proxyProtocol: Bool = false
    /// Permissions of a `unix:` socket file (`mode: "0660"`); nil = as the umask leaves them.
    public var socketMode: UInt16?
    /// Owner of a `unix:` socket file (`owner: "user[:group]"`); nil = whoever made it.
    public var socketOwner: RunAs?
    public var location: SourceLocation?
    public init(address: Address, location: SourceLocation? = nil) {
        self.address = address
        self.location = location
    }
}

public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case debug, info, warn, error
    private var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

public struct AccessLogConfig: Sendable, Hashable {
    public enum Destination: Sendable, Hashable { case stdout, stderr, off, file(String) }
    public enum Format: String, Sendable, CaseIterable { case common, combined, json }
    public var to: Destination = .stdout
    public var format: Format = .combined
    public init() {}
}

/// Durations are stored in seconds; 0 means "no limit".
public struct TimeoutsConfig: Sendable, Hashable {
    public var header: Double = 10
    public var body: Double = 60
    public var idle: Double = 75
    public var write: Double = 60
    public var shutdown: Double = 30
    public init() {}
}

public struct LimitsConfig: Sendable, Hashable {
    public var connections: Int = 10_000
    public var headerBytes: Int = 16 * 1024
    public var uriBytes: Int = 8 * 1024
    public var bodyBytes: Int = 10 * 1024 * 1024
    public var headers: Int = 100
    public init() {}
}

/// An IPv4 or IPv6 network in CIDR form; `bytes` has 4 or 16 entries.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]
    public var prefixLength: Int
    public init(bytes: [UInt8], prefixLength: Int) {
        self.bytes = bytes
        self.prefixLength = prefixLength
    }
    public var description: String { "\(bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : "ipv6")/\(prefixLength)" }
    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address, bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }
}

public struct ServerConfig: Sendable {
    public var listen: [ListenConfig] = [ListenConfig(address: .tcp(host: "127.0.0.1", port: 8080))]
    /// nil = `auto`.
    public var workers: Int? = 1
    /// nil = `auto`.
    public var threads: Int?
    public var maxRequests: Int = 0
    public var logLevel: LogLevel = .info
    public var accessLog = AccessLogConfig()
    public var timeouts = TimeoutsConfig()
    public var limits = LimitsConfig()
    public var trustedProxies: [CIDR] = []
    /// Middleware wrapped around every host (`server.middleware`), outermost first.
    public var middleware: [MiddlewareItem] = []
    public var http2: Bool = true
    public var pidFile: String?
    /// Listen backlog of every listener.
    public var backlog: Int = 1024
    /// Whether answers carry `Server: pagi-serve`.
    public var serverHeader: Bool = true
    /// Who the worker processes become after binding the listeners (`user`, `group`).
    public var runAs: RunAs?
    /// `admin.listen`, when configured.
    public var adminListen: ListenConfig?
    public init() {}
}

public struct TLSConfig: Sendable, Hashable {
    public enum ClientAuth: String, Sendable { case require, optional }
    public var cert: String
    public var key: String
    public var clientCA: String?
    public var clientAuth: ClientAuth?
    public var minVersion: String = "1.2"
    public var location: SourceLocation?
    /// Where `cert`, `key` and `client_ca` are written: a file that cannot be used is reported there.
    public var certLocation: SourceLocation?
    public var keyLocation: SourceLocation?
    public var clientCALocation: SourceLocation?
    /// Automatic certificates (docs/tls.md, *Automatic certificates*): `cert` and `key` then name
    /// the files in `acme.storage` that the ACME client keeps up to date, which may not exist yet.
    public var acme: ACMEConfig?
    /// With `acme`: the names the certificate is for (a host's names that are not wildcards).
    public var acmeNames: [String] = []
    public init(cert: String, key: String) {
        self.cert = cert
        self.key = key
    }
}

/// `tls.acme` (docs/tls.md, *Automatic certificates*): where and how certificates are obtained.
public struct ACMEConfig: Sendable, Hashable {
    public enum Challenge: String, Sendable, CaseIterable { case http01 = "http-01", tlsALPN01 = "tls-alpn-01" }
    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
    public var email: String?
    public var directory = ACMEConfig.letsEncrypt
    public var challenge = Challenge.http01
    /// Absolute path of the storage directory (`ACMEStorage` lays it out).
    public var storage: String
    /// PEM bundle trusted for the ACME server's own HTTPS (a private or test CA); nil: the system's.
    public var caRoots: String?
    public var location: SourceLocation?
    public init(storage: String) { self.storage = storage }
}

/// An item of a middleware list: either a reference to a named stack or a one-key mapping.
public struct MiddlewareItem: Sendable {
    public enum Kind: Sendable {
        /// Reference to a top-level named stack.
        case stack(String)
        /// A built-in middleware with its decoded options.
        case builtin(MiddlewareSpec)
    }
    public var kind: Kind
    public var location: SourceLocation
    public init(kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
    }
    public var name: String {
        switch kind {
        case .stack(let name): return name
        case .builtin(let spec): return spec.kind.rawValue
        }
    }
}

/// A plain YAML value tree (after `${VAR}` substitution), for options that later stages interpret.
public indirect enum ConfigValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([ConfigValue])
    /// Keys in file order.
    case map([(key: String, value: ConfigValue)])

    public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.list(x), .list(y)): return x == y
        case let (.map(x), .map(y)): return x.map(\.key) == y.map(\.key) && x.map(\.value) == y.map(\.value)
        default: return false
        }
    }
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let v): hasher.combine(v)
        case .int(let v): hasher.combine(v)
        case .double(let v): hasher.combine(v)
        case .string(let v): hasher.combine(v)
        case .list(let v): hasher.combine(v)
        case .map(let v): for (k, x) in v { hasher.combine(k); hasher.combine(x) }
        }
    }
}

public struct HostConfig: Sendable {
    /// Lower-cased names as written (`example.com`, `*.example.org`, `*`).
    public var names: [String] = []
    public var isDefault: Bool = false
    public var tls: TLSConfig?
    public var middleware: [MiddlewareItem] = []
    /// Status code → absolute path of the error page file.
    public var errorPages: [Int: String] = [:]
    public var routes: [RouteConfig] = []
    public var location: SourceLocation
    public init(location: SourceLocation) { self.location = location }
}

public struct RouteConfig: Sendable {
    /// The path pattern, parsed once by the loader.
    public var pattern: RoutePattern
    /// The pattern exactly as written (`/users/{id}`).
    public var path: String { pattern.text }
    public var pathLocation: SourceLocation
    /// Upper-cased; nil = any method.
    public var methods: [String]?
    /// Header names lower-cased.
    public var headers: [String: String] = [:]
    public var query: [String: String] = [:]
    /// JSON path (`$.user.role`) → expected value.
    public var bodyJSON: [(path: String, value: ConfigValue)] = []
    public var middleware: [MiddlewareItem] = []
    public var handler: HandlerConfig
    public var handlerLocation: SourceLocation
    public var location: SourceLocation
    public init(pattern: RoutePattern, pathLocation: SourceLocation, handler: HandlerConfig, handlerLocation: SourceLocation,
                location: SourceLocation) {
        self.pattern = pattern
        self.pathLocation = pathLocation
        self.handler = handler
        self.handlerLocation = handlerLocation
        self.location = location
    }
    /// Number of conditions, for precedence among routes with the same pattern (docs/configuration.md §8.3).
    public var conditionCount: Int {
        (methods == nil ? 0 : 1) + headers.count + query.count + bodyJSON.count
    }
}

public struct StaticConfig: Sendable, Hashable {
    public enum Dotfiles: String, Sendable { case deny, allow }
    public enum Symlinks: String, Sendable { case inside, always, never }
    public enum Encoding: String, Sendable, CaseIterable {
        case br, zstd, gzip
        /// File-name suffix of the precompressed sibling.
        public var fileExtension: String {
            switch self {
            case .br: return ".br"
            case .zstd: return ".zst"
            case .gzip: return ".gz"
            }
        }
    }
    /// Absolute, resolved against the directory of the naming file.
    public var root: String
    public var index: [String] = ["index.html"]
    public var listing: Bool = false
    /// URL path of the fallback file (`/index.html`), served with 200 when nothing matches.
    public var fallback: String?
    public var precompressed: [Encoding] = Encoding.allCases
    public var cacheControl: String?
    public var dotfiles: Dotfiles = .deny
    public var followSymlinks: Symlinks = .inside
    public init(root: String) { self.root = root }
}
