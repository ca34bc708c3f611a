#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PagiConfig
import Synchronization

/// Header fields in arrival order. Names keep their case; lookups are case-insensitive (ASCII).
public struct HeaderFields: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)]
    /// These fields already in their HTTP/1.1 form, once `prepareFieldLines()` made it: headers
    /// that are answered again and again (a static file's, a fixed stub's) are then copied to the
    /// wire as one block. Any change drops it.
    public private(set) var fieldLines: FieldLines?

    public init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { (name: $0.0, value: $0.1) }
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
    public var count: Int { fields.count }

    /// The first value of `name`, or nil.
    public subscript(_ name: String) -> String? {
        for field in fields where field.name.asciiCaseInsensitiveEquals(name) { return field.value }
        return nil
    }
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.asciiCaseInsensitiveEquals(name) }.map(\.value)
    }
    /// All values of a list field as one, joined by commas (RFC 9110 §5.3); nil when absent.
    /// The common single field costs no allocation.
    public func combinedValue(_ name: String) -> String? {
        var combined: String?
        for field in fields where field.name.asciiCaseInsensitiveEquals(name) {
            if let earlier = combined { combined = earlier + ", " + field.value } else { combined = field.value }
        }
        return combined
    }
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Keeps prepared field lines prepared (one more line), so a prepared set with one field added
    /// per answer (a 206's `Content-Range`) is not serialised again.
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
        fieldLines?.append(name, value)
    }
    /// Replaces every field `name` with one field. When there is none yet it is an `add`, which
    /// keeps prepared field lines prepared (middleware adding a field to a cached answer).
    public mutating func set(_ name: String, _ value: String) {
        if contains(name) { remove(name) }
        add(name, value)
    }
    public mutating func remove(_ name: String) {
        fieldLines = nil
        fields.removeAll { $0.name.asciiCaseInsensitiveEquals(name) }
    }

    /// Serialises the fields now, for headers that will be sent many times unchanged.
    public mutating func prepareFieldLines() { fieldLines = FieldLines(self) }
}

extension HeaderFields {
    /// `headers: {set, add, remove}` (the `headers` middleware, `proxy`): removes, then sets, then
    /// adds. Removing `Server` leaves an empty `Server` field, which the engine takes as "send none"
    /// (it adds its own otherwise).
    public mutating func apply(_ edits: HeaderEdits) {
        for name in edits.remove {
            remove(name)
            if name.asciiCaseInsensitiveEquals("server") { add("Server", "") }
        }
        for pair in edits.set { set(pair.name, pair.value) }
        for pair in edits.add { add(pair.name, pair.value) }
    }
}

/// Header fields as HTTP/1.1 field lines (`Name: value` CRLF each), without the framing fields
/// the engine writes itself from the real message (`Content-Length`, `Transfer-Encoding`,
/// `Connection`, `Date`): a handler's copy of those could contradict what is actually sent.
public struct FieldLines: Sendable {
    public private(set) var bytes: [UInt8]
    /// A handler set its own `Server` field.
    public private(set) var hasServer: Bool

    /// `keepingConnection`: a `101` keeps the handler's `Connection: Upgrade`.
    public init(_ headers: HeaderFields, keepingConnection: Bool = false) {
        bytes = []
        bytes.reserveCapacity(headers.fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        hasServer = false
        for field in headers.fields {
            if keepingConnection && field.name.asciiCaseInsensitiveEquals("connection") {
                appendLine(field.name, field.value)
            } else {
                append(field.name, field.value)
            }
        }
    }

    /// Adds `name: value` as `FieldLines(headers)` would have: framing fields are left out, and an
    /// empty `Server` field means "no Server field at all" (`headers: {remove: [Server]}`).
    mutating func append(_ name: String, _ value: String) {
        if Self.isFramingField(name) { return }
        if name.utf8.count == 6 && name.asciiCaseInsensitiveEquals("server") {
            hasServer = true
            if value.isEmpty { return }
        }
        appendLine(name, value)
    }

    private mutating func appendLine(_ name: String, _ value: String) {
        bytes.append(contentsOf: name.utf8)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: value.utf8)
        bytes.append(UInt8(ascii: "\r"))
        bytes.append(UInt8(ascii: "\n"))
    }

    public static func isFramingField(_ name: String) -> Bool {
        switch name.utf8.count {
        case 4: name.asciiCaseInsensitiveEquals("date")
        case 10: name.asciiCaseInsensitiveEquals("connection")
        case 14: name.asciiCaseInsensitiveEquals("content-length")
        case 17: name.asciiCaseInsensitiveEquals("transfer-encoding")
        default: false
        }
    }
}

extension StringProtocol {
    /// `body` on the UTF-8 bytes where they are (a native string's are contiguous; others are copied
    /// once). A byte loop over a buffer costs a few instructions a byte, over `utf8` a dozen or more:
    /// the scans that run for every request use this (docs/performance.md, *Round five*).
    @inlinable
    public func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        return try Array(utf8).withUnsafeBufferPointer(body)
    }
}

extension String {
    /// ASCII case-insensitive comparison without allocating (header names are ASCII tokens).
    /// Runs dozens of times for every request, so it works on the contiguous bytes: indexing
    /// `utf8` re-examines the string's representation at every step (measured ~3× slower).
    /// Inlinable so that the length check, which settles most comparisons, costs no call.
    @inlinable
    public func asciiCaseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && asciiCaseInsensitiveEqualsOfSameLength(other)
    }

    @usableFromInline
    func asciiCaseInsensitiveEqualsOfSameLength(_ other: String) -> Bool {
        withUTF8Bytes { a in other.withUTF8Bytes { b in Self.asciiCaseInsensitiveEquals(a, b) } }
    }

    private static func asciiCaseInsensitiveEquals(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        for index in a.indices where a[index] != b[index] {
            let folded = a[index] | 0x20
            guard folded == b[index] | 0x20, folded >= UInt8(ascii: "a"), folded <= UInt8(ascii: "z") else { return false }
        }
        return true
    }
}

/// A request as handlers see it: already validated by the engine (framing, Host, target).
public struct Request: Sendable {
    public var method: String
    /// The request target as received (origin-form, or absolute-form).
    public var target: String
    /// Percent-decoded, dot-segment-normalised path, always starting with `/`. When
    /// `pathHasEncodedSeparators`, `%`, `/` and `\` inside segments stay percent-encoded.
    public var path: String
    /// A segment of the path carried an encoded `/` or `\` (`%2F`, `%5C`): `static` refuses the
    /// request, route parameters are decoded (docs/architecture.md, "Paths").
    public var pathHasEncodedSeparators = false
    /// The raw query string without `?`, if any.
    public var query: String?
    public var versionMajor: Int
    public var versionMinor: Int
    public var headers: HeaderFields
    /// Lower-cased host name without port (from absolute-form target or `Host`).
    public var host: String
    public var clientAddress: String
    public var body: [UInt8]
    /// Parameters captured by the route pattern (`{id}`, `{rest...}`); filled in by the router.
    public var params: [String: String] = [:]
    /// What the engine, middleware and routing learnt about this request.
    public var context = RequestContext()

    public init(method: String, target: String, path: String, query: String?, versionMajor: Int = 1,
                versionMinor: Int = 1, headers: HeaderFields, host: String, clientAddress: String = "",
                body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
        self.host = host
        self.clientAddress = clientAddress
        self.body = body
    }

    public var isHead: Bool { method == "HEAD" }

    /// Query parameters (form-decoded); later duplicates win. A part that does not decode to UTF-8
    /// is kept as sent.
    public var queryItems: [String: String] { queryItems(decodedBy: PercentDecoding.decodeForm) }

    /// Query parameters for display (templates): bytes that are not UTF-8 become U+FFFD.
    public var lossyQueryItems: [String: String] { queryItems(decodedBy: PercentDecoding.decodeFormLossy) }

    private func queryItems(decodedBy decode: (String) -> String?) -> [String: String] {
        guard let query, !query.isEmpty else { return [:] }
        var items: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(String(parts[0])) ?? String(parts[0])
            let value = parts.count > 1 ? (decode(String(parts[1])) ?? String(parts[1])) : ""
            items[name] = value
        }
        return items
    }
}

/// Facts about a request beyond its message, added on its way through the chain
/// (docs/architecture.md): the engine reads them back for the access log and metrics.
///
/// Most requests get none of them, so they live in one box made on the first write: a request
/// without any costs one empty reference to create, copy and destroy, not seven fields (measured
/// with callgrind: ~500 instructions per request). Copies share the box until one of them writes.
public struct RequestContext: Sendable {
    public enum Scheme: String, Sendable { case http, https }

    private final class Facts: @unchecked Sendable {
        // @unchecked: a box is written only while uniquely referenced (copy on write below),
        // so no two threads ever see one box change.
        var requestID: String?
        var user: String?
        var scheme = Scheme.http
        var forwardedHost: String?
        var hostName: String?
        var routePattern: String?
        var parsedJSONBody: ParsedJSONBody?
        var clientSubject: String?
        var isHTTP2 = false
        var isExtendedConnect = false
        var trustedPeer: String?
        var bodySource: (any RequestBodySource)?

        func copy() -> Facts {
            let copy = Facts()
            (copy.requestID, copy.user, copy.scheme) = (requestID, user, scheme)
            (copy.forwardedHost, copy.hostName, copy.routePattern) = (forwardedHost, hostName, routePattern)
            (copy.parsedJSONBody, copy.clientSubject, copy.isHTTP2) = (parsedJSONBody, clientSubject, isHTTP2)
            copy.trustedPeer = trustedPeer
            copy.isExtendedConnect = isExtendedConnect
            copy.bodySource = bodySource
            return copy
        }
    }

    private var facts: Facts?

    public init() {}

    private mutating func writable() -> Facts {
        if let facts, isKnownUniquelyReferenced(&self.facts) { return facts }
        let fresh = facts?.copy() ?? Facts()
        facts = fresh
        return fresh
    }

    /// `request_id`'s id, once that middleware ran.
    public var requestID: String? {
        get { facts?.requestID }
        set { writable().requestID = newValue }
    }
    /// The user `basic_auth` let in.
    public var user: String? {
        get { facts?.user }
        set { writable().user = newValue }
    }
    /// As the client used it (a trusted proxy's `X-Forwarded-Proto` / `Forwarded: proto=`).
    public var scheme: Scheme {
        get { facts?.scheme ?? .http }
        set { writable().scheme = newValue }
    }
    /// The subject of the client certificate the TLS handshake verified (`client_ca`,
    /// docs/tls.md), as an RFC 4514 string: `CN=alice,O=Example`.
    public var clientSubject: String? {
        get { facts?.clientSubject }
        set { writable().clientSubject = newValue }
    }
    /// The request came on an HTTP/2 stream (its `versionMinor` then reads 1): the access log says `HTTP/2.0`.
    public var isHTTP2: Bool {
        get { facts?.isHTTP2 ?? false }
        set { writable().isHTTP2 = newValue }
    }
    /// An HTTP/2 extended CONNECT for a WebSocket (RFC 8441; docs/http2.md): routed as a `GET`, its
    /// handshake has no `Upgrade` or key, and it is accepted with 200 rather than 101.
    public var isExtendedConnect: Bool {
        get { facts?.isExtendedConnect ?? false }
        set { writable().isExtendedConnect = newValue }
    }
    /// The address of the peer when it is one of `trusted_proxies` (the client address is then the one
    /// it forwarded): a `proxy` route appends to the forwarding chain such a peer sent, and
    /// replaces one that anybody else sent (docs/proxy.md).
    public var trustedPeer: String? {
        get { facts?.trustedPeer }
        set { writable().trustedPeer = newValue }
    }
    /// The body, still arriving, of a request routed to a `StreamsRequestBody` handler (`body` is
    /// then empty); nil for every other request.
    public var bodySource: (any RequestBodySource)? {
        get { facts?.bodySource }
        set { writable().bodySource = newValue }
    }
    /// The `Host` the client asked the trusted proxy for, when it says so (`X-Forwarded-Host` /
    /// `Forwarded: host=`); routing still uses the request's own `Host`.
    public var forwardedHost: String? {
        get { facts?.forwardedHost }
        set { writable().forwardedHost = newValue }
    }
    /// The first name of the host that answered, and the pattern of the route (a handler serving
    /// routes of its own, such as `openapi`, puts its finer pattern here; nil for 404, 405 and
    /// protocol errors): the labels of the metrics, recorded only when a table has an observer,
    /// so that requests nobody counts do not carry them.
    public var hostName: String? {
        get { facts?.hostName }
        set { writable().hostName = newValue }
    }
    public var routePattern: String? {
        get { facts?.routePattern }
        set { writable().routePattern = newValue }
    }
    /// The body read as JSON, once routing (`body_json`) or a reader (`Request.jsonBody()`) did:
    /// one parse for all of them. Whoever replaces the body afterwards must clear it.
    public var parsedJSONBody: ParsedJSONBody? {
        get { facts?.parsedJSONBody }
        set { writable().parsedJSONBody = newValue }
    }
}

/// An open file a response sends from. The engine takes the descriptor (`take()`); if nobody
/// does, it is closed when the last reference goes away, so an abandoned response never leaks it.
public final class OpenFile: Sendable {
    private let descriptor: Mutex<Int32>

    public init(descriptor: Int32) {
        self.descriptor = Mutex(descriptor)
    }
    /// Hands the descriptor over to the caller, who must close it. Returns nil if already taken.
    public func take() -> Int32? {
        descriptor.withLock { fd in
            guard fd >= 0 else { return nil }
            defer { fd = -1 }
            return fd
        }
    }
    deinit {
        let fd = descriptor.withLock { $0 }
        if fd >= 0 { _ = close(fd) }
    }
}

public enum ResponseBody: Sendable {
    case empty
    case bytes([UInt8])
    /// `length` bytes of `file` from `offset` (sent with sendfile(2) on cleartext connections).
    case file(OpenFile, offset: Int, length: Int)
    /// A `multipart/byteranges` body: each part is a preamble (boundary and part headers)
    /// followed by a slice of the file; `trailer` closes the multipart body.
    case multipart(OpenFile, parts: [(preamble: [UInt8], offset: Int, length: Int)], trailer: [UInt8])
    /// A body produced over time (SSE, throttled bodies): sent chunked on HTTP/1.1, or until the
    /// connection closes on HTTP/1.0. Its length is not known in advance.
    case stream(any BodyStream)
    /// No body, in an answer to `HEAD` only, telling the length a `GET` would get (a `proxy` relays
    /// its upstream's `Content-Length`); nil: not known, a `GET` would get it chunked.
    case omitted(length: Int?)

    /// Number of body bytes, for `Content-Length` (0 for a stream, whose length is unknown).
    public var length: Int {
        switch self {
        case .empty, .stream: return 0
        case .omitted(let length): return length ?? 0
        case .bytes(let b): return b.count
        case .file(_, _, let length): return length
        case .multipart(_, let parts, let trailer):
            return parts.reduce(trailer.count) { $0 + $1.preamble.count + $1.length }
        }
    }
}

/// An answer: status, header fields and body — nothing an engine must interpret beyond HTTP
/// semantics (docs/architecture.md). An answer that is not ready at once (it waits for Redis, a
/// password check, a delay), or that is not an HTTP answer at all (a protocol switch, a fault on
/// purpose), is given later through the engine's `Exchange`: see `Response.later`.
public struct Response: Sendable {
    public var status: Int
    public var headers: HeaderFields
    public var body: ResponseBody
    /// Set when the answer comes later, through an `Exchange`; `status`, `headers` and `body` are
    /// then meaningless.
    public var deferred: DeferredResponse?

    public init(status: Int, headers: HeaderFields = HeaderFields(), body: ResponseBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// An answer given later: the engine calls `start` once, at once, with the exchange of this
    /// request; `start` (or what it sets off, on any thread) ends the exchange exactly once.
    public static func later(_ start: @escaping @Sendable (_ exchange: any Exchange) -> Void) -> Response {
        var response = Response(status: 0)
        response.deferred = DeferredResponse(start: start)
        return response
    }

    /// `response` after `delay` (`respond: {delay}`); the connection answers nothing else meanwhile.
    public static func delayed(_ response: Response, by delay: Duration) -> Response {
        .later { exchange in exchange.schedule(after: delay) { exchange.send(response) } }
    }

    /// No answer but misbehaviour on purpose (`respond: {fault}`), after `delay` when given.
    public static func fault(_ fault: Fault, after delay: Duration? = nil) -> Response {
        guard let delay else { return .later { $0.abort(fault) } }
        return .later { exchange in exchange.schedule(after: delay) { exchange.abort(fault) } }
    }

    /// `response` (a 101 on HTTP/1.1), after which `upgrade` takes the connection over (WebSocket).
    public static func switching(_ response: Response, to upgrade: any ConnectionUpgrade) -> Response {
        .later { $0.switchProtocols(response, to: upgrade) }
    }
}

/// The one way an answer is given later (docs/architecture.md), implemented by each engine for
/// each of its exchanges (an HTTP/1.1 connection's current request; an HTTP/2 stream). Exactly one
/// of `send`, `abort` and `switchProtocols` ends an exchange; calls after that are ignored. Every
/// method may be called from any thread.
public protocol Exchange: Sendable {
    /// Answers with `response`. `request` is the request as the chain left it when the chain went
    /// on off the event loop (after a password check), so logs and metrics see its route and
    /// request id; nil means as it was when `Response.later` was returned.
    func send(_ response: Response, request: Request?)
    /// Ends the exchange without an answer, as `fault` says (HTTP/1.1 resets or closes the
    /// connection, or writes bytes that are not HTTP).
    func abort(_ fault: Fault)
    /// Sends `response` and hands the connection over to `upgrade`.
    func switchProtocols(_ response: Response, to upgrade: any ConnectionUpgrade)
    /// Runs `work` after `delay` on the exchange's own thread, unless the connection is gone by then.
    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void)
}

extension Exchange {
    public func send(_ response: Response) { send(response, request: nil) }
}

/// An edit middleware makes to a response on its way back (see `Response.apply(_:)`). A value
/// rather than a closure: applied at once, it costs no allocation.
public protocol ResponseEdit: Sendable {
    func apply(to response: inout Response)
}

extension Response {
    /// Applies `edit` now or, when this answer comes later, to the one that comes (the 101 of a
    /// protocol switch included): how middleware edits a response without caring when it is produced.
    public mutating func apply<Edit: ResponseEdit>(_ edit: Edit) {
        guard let deferred else {
            edit.apply(to: &self)
            return
        }
        self.deferred = DeferredResponse { exchange in deferred.start(EditingExchange(exchange: exchange, edit: edit)) }
    }
}

/// An exchange whose answers get `edit` on their way to the engine.
private struct EditingExchange<Edit: ResponseEdit>: Exchange {
    let exchange: any Exchange
    let edit: Edit

    func send(_ response: Response, request: Request?) {
        var edited = response
        edited.apply(edit)
        exchange.send(edited, request: request)
    }
    func abort(_ fault: Fault) { exchange.abort(fault) }
    func switchProtocols(_ response: Response, to upgrade: any ConnectionUpgrade) {
        var edited = response
        edit.apply(to: &edited)
        exchange.switchProtocols(edited, to: upgrade)
    }
    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) { exchange.schedule(after: delay, work) }
}

/// See `Response.later`.
public struct DeferredResponse: Sendable {
    public let start: @Sendable (_ exchange: any Exchange) -> Void
}
