// The built-in middleware as typed options (docs/configuration.md, "Middleware"). The loader
// decodes each item once into one of these; the middleware module builds its object from it
// with an exhaustive `switch`, so a middleware without an implementation does not compile.

/// Every built-in middleware, by the name the config file uses. The single list the loader's
/// name checks, did-you-mean hints and the JSON Schema are derived from.
public enum MiddlewareKind: String, Sendable, CaseIterable {
    case headers, cors
    case basicAuth = "basic_auth"
    case ipFilter = "ip_filter"
    case rateLimit = "rate_limit"
    case compress
    case bodyLimit = "body_limit"
    case requestID = "request_id"
    case rewrite

    /// May be written as a bare name (its options all have defaults).
    public var worksWithoutOptions: Bool { self == .requestID || self == .compress }
}

/// One built-in middleware with its decoded options.
public enum MiddlewareSpec: Sendable {
    case headers(HeadersOptions)
    case cors(CORSOptions)
    case basicAuth(BasicAuthOptions)
    case ipFilter(IPFilterOptions)
    case rateLimit(RateLimitOptions)
    case compress(CompressOptions)
    /// Largest request body in bytes.
    case bodyLimit(Int)
    case requestID(RequestIDOptions)
    case rewrite(RewriteOptions)

    public var kind: MiddlewareKind {
        switch self {
        case .headers: .headers
        case .cors: .cors
        case .basicAuth: .basicAuth
        case .ipFilter: .ipFilter
        case .rateLimit: .rateLimit
        case .compress: .compress
        case .bodyLimit: .bodyLimit
        case .requestID: .requestID
        case .rewrite: .rewrite
        }
    }
}

/// `set` replaces every field of that name, `add` appends one more, `remove` drops them all.
public struct HeaderEdits: Sendable, Hashable {
    public var `set`: [HeaderPair] = []
    public var add: [HeaderPair] = []
    public var remove: [String] = []
    public init() {}
    public var isEmpty: Bool { self.set.isEmpty && add.isEmpty && remove.isEmpty }
}

public struct HeaderPair: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct HeadersOptions: Sendable, Hashable {
    /// Edits of the response.
    public var response = HeaderEdits()
    /// Edits of the request, before the rest of the chain sees it.
    public var request = HeaderEdits()
    public init() {}
}

public struct CORSOptions: Sendable, Hashable {
    /// Allowed origins as written (`https://a.com`), or `*` for any.
    public var origins: [String] = ["*"]
    /// Upper-cased; the methods a preflight may ask for.
    public var methods: [String] = ["GET", "HEAD", "POST"]
    /// Request headers a preflight may ask for; empty = whatever the preflight asks.
    public var headers: [String] = []
    public var expose: [String] = []
    public var credentials = false
    /// Seconds a preflight answer may be cached; nil sends no `Access-Control-Max-Age`.
    public var maxAge: Int?
    public init() {}
}

public struct BasicAuthOptions: Sendable, Hashable {
    public var realm = "restricted"
    /// User name → crypt(3) hash (`$2b$…` bcrypt or `$6$…` sha512-crypt), inline and from `htpasswd`.
    public var users: [String: String] = [:]
    /// The htpasswd file the users came from, if any (read again on every compilation).
    public var htpasswd: String?
    public init() {}
}

public struct IPFilterOptions: Sendable, Hashable {
    public var allow: [CIDR] = []
    public var deny: [CIDR] = []
    public init() {}
}

public struct RateLimitOptions: Sendable, Hashable {
    public enum Key: Sendable, Hashable {
        case clientIP
        /// The value of this request header (lower-cased name); requests without it share one bucket.
        case header(String)
    }
    /// Tokens added per second.
    public var perSecond: Double
    /// Bucket size: how many requests may come at once.
    public var burst: Int
    public var key: Key = .clientIP
    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }
}

public struct CompressOptions: Sendable, Hashable {
    public enum Algorithm: String, Sendable, CaseIterable { case gzip, deflate, br, zstd }
    /// In order of preference when the client's q-values tie.
    public var algorithms: [Algorithm] = [.gzip]
    /// Bodies smaller than this are sent as they are (compressing them gains nothing).
    public var minSize = 1024
    /// zlib level, 1 (fastest) to 9 (smallest).
    public var level = 5
    /// Media types (`text/*` wildcards allowed) that are compressed.
    public var types = ["text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml"]
    public init() {}
}

public struct RequestIDOptions: Sendable, Hashable {
    public var header = "X-Request-ID"
    public init() {}
}

public struct RewriteOptions: Sendable, Hashable {
    /// A regular expression matched against the request's path (not its query).
    public var from: String
    /// The replacement; `$1`… are the captures.
    public var to: String
    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}
