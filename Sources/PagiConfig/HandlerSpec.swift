// The route handlers as typed options (docs/configuration.md §9). The loader decodes each
// handler once into one of these; the composition root (`Builtins`) builds the handler from it
// with an exhaustive `switch`, so a handler the config language names but nothing builds does
// not compile.

/// Every handler, by the route key the config file uses: the one list the loader's name checks,
/// did-you-mean hints and the JSON Schema are derived from.
public enum HandlerKind: String, Sendable, CaseIterable {
    case `static`, respond, redirect, proxy, websocket, sse, publish, openapi, health, metrics
}

/// A route's one handler with its decoded options.
public enum HandlerConfig: Sendable {
    case `static`(StaticConfig)
    case respond(RespondOptions)
    case redirect(RedirectOptions)
    case proxy(ProxyOptions)
    case websocket(WebSocketConfig)
    case sse(SSEConfig)
    /// The channel name template.
    case publish(channel: String)
    case openapi(OpenAPIOptions)
    case health
    case metrics

    public var kind: HandlerKind {
        switch self {
        case .static: .static
        case .respond: .respond
        case .redirect: .redirect
        case .proxy: .proxy
        case .websocket: .websocket
        case .sse: .sse
        case .publish: .publish
        case .openapi: .openapi
        case .health: .health
        case .metrics: .metrics
        }
    }

    public var name: String { kind.rawValue }
}

/// `respond`: one response, or a list served in turn.
public struct RespondOptions: Sendable {
    public var responses: [StubSpec]
    /// Start over after the last response (else the last one repeats).
    public var cycle: Bool
    public init(responses: [StubSpec], cycle: Bool = false) {
        self.responses = responses
        self.cycle = cycle
    }
}

/// One response of `respond`.
public struct StubSpec: Sendable {
    public enum Body: Sendable {
        /// A YAML value sent as JSON; its string leaves are templates.
        case json(ConfigValue)
        case text(String)
        /// An absolute path; its contents are a template when `templated`.
        case file(path: String, templated: Bool)
    }
    public enum Delay: Sendable, Equatable {
        case fixed(Duration)
        case between(min: Duration, max: Duration)
    }
    public var status = 200
    /// In file order; values are templates.
    public var headers: [HeaderPair] = []
    public var body: Body?
    public var delay: Delay?
    /// `throttle`, in bytes per second.
    public var bytesPerSecond: Int?
    public var fault: Fault?
    public init() {}
}

/// Ways to misbehave on purpose (`respond: {fault}`), for testing clients against bad servers.
public enum Fault: String, Sendable, CaseIterable {
    /// Reset the connection (TCP RST) without answering.
    case reset
    /// Close the connection without answering.
    case empty
    /// Answer with bytes that are not valid HTTP, then close.
    case malformed
}

public struct RedirectOptions: Sendable, Hashable {
    /// A template.
    public var to: String
    public var status = 302
    public init(to: String) { self.to = to }
}

/// `proxy` (docs/proxy.md).
public struct ProxyOptions: Sendable, Hashable {
    public enum Balance: String, Sendable, CaseIterable { case roundRobin = "round_robin", leastConn = "least_conn", random, ipHash = "ip_hash" }
    /// Active health checks (docs/proxy.md): `rise` checks in a row that pass bring an upstream
    /// back, `fall` that fail take it out (HAProxy's defaults).
    public struct Health: Sendable, Hashable {
        public var path = "/"
        public var interval: Double = 5
        public var timeout: Double = 2
        public var rise = 2
        public var fall = 3
        /// The statuses that pass (`status: [200, 3xx]`); 2xx and 3xx unless told, as nginx's `match`.
        public var status: [ClosedRange<Int>] = [200...399]
        public init() {}
        public func passes(_ status: Int) -> Bool { self.status.contains { $0.contains(status) } }
    }
    public var upstreams: [String]
    public var balance = Balance.roundRobin
    public var health: Health?
    public var stripPrefix = false
    public var headers = HeaderEdits()
    public var timeout: Double = 30
    /// CA certificates (PEM) that `https://` upstreams are verified against instead of the system's
    /// roots (`ca`, an addition: docs/proxy.md).
    public var ca: String?
    public init(upstreams: [String]) { self.upstreams = upstreams }
}

public struct WebSocketConfig: Sendable, Hashable {
    public enum Mode: Sendable, Hashable {
        /// Every message goes back to its sender.
        case echo
        /// Every message is published to the channel (a name template); every channel message goes to the member.
        case broadcast(String)
        /// A read-only feed of the channel.
        case subscribe(String)
    }
    public var mode = Mode.echo
    /// Largest message accepted (after decompression), in bytes.
    public var maxMessage = 1 << 20
    /// Seconds between server pings (0: never).
    public var pingInterval: Double = 30
    /// Seconds without a message from the peer before the server closes (0: never).
    public var idleTimeout: Double = 0
    public var compression = true
    public var subprotocols: [String] = []
    /// Allowed `Origin` values, lower-cased (empty: any origin).
    public var origins: [String] = []
    public init() {}
}

public struct SSEConfig: Sendable, Hashable {
    public enum Source: Sendable, Hashable {
        /// A channel name template.
        case subscribe(String)
        /// An event every `every`, its data a Mustache template.
        case ticker(every: Duration, data: String, event: String?)
    }
    public var source: Source
    /// Comment lines this often; nil for none (`keepalive: 0`).
    public var keepalive: Duration? = .seconds(15)
    /// Sent once at the start as `retry:`.
    public var retry: Duration = .seconds(3)
    /// Events kept per channel for clients that resume with `Last-Event-ID`.
    public var replay = 100
    public init(source: Source) { self.source = source }
}

public struct OpenAPIOptions: Sendable, Hashable {
    /// Absolute path of the OpenAPI document.
    public var spec: String
    public var validate = false
    public init(spec: String) { self.spec = spec }
}
