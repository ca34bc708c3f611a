import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PagiConfig
import PagiCore

/// `proxy` (docs/proxy.md): forwards a request to one of its upstreams and the answer back, on
/// the client connection's own event loop (`UpstreamConnection` says why not async-http-client).
///
/// - The balancer picks an upstream; a connection or protocol failure ejects it for a while and
///   an idempotent request is retried on the next — never once any byte of the answer was sent
///   (the head is the first thing sent, so: never once an upstream answered). A kept-alive
///   connection the upstream had closed meanwhile is replaced, as nginx does, without counting as
///   a failure.
/// - `timeout` bounds the wait for the answer's head (504 past it) and each later read.
/// - The request goes with `X-Forwarded-For/-Proto/-Host` and `Forwarded`, the chain of a trusted
///   proxy kept and appended to, anybody else's replaced; hop-by-hop fields are removed both ways;
///   `Host` is the client's unless `headers.set` names it.
/// - A request body longer than `bufferedBody`, or chunked, is streamed to the upstream as it
///   arrives, the client read only while the upstream takes it (`StreamsRequestBody`); such a
///   request goes on a new connection and is never retried once its body began to flow. Shorter
///   bodies arrive whole first, so that a retry can send them again.
/// - An answer of known length up to `bufferedAnswer` arrives whole; a longer or open-ended one
///   (SSE) is streamed chunk by chunk as it arrives, the upstream read only while the client keeps
///   up. Either keeps the upstream's `Content-Length`.
public struct ProxyHandler: StreamsRequestBody {
    let balancer: Balancer
    let options: ProxyOptions
    /// Leading path segments removed before forwarding (`strip_prefix`).
    let strippedSegments: Int
    let timeout: TimeAmount
    /// `pagi-serve record`'s recorder, when it runs.
    let recorder: (any ProxyRecorder)?
    static let logger = Logger(label: "pagi-serve.proxy")
    static let bufferedAnswer = 256 * 1024
    static let bufferedBody = 64 * 1024

    /// Throws when the route's `ca` cannot be used: an upstream left unverified is not an option.
    public init(_ options: ProxyOptions, pattern: RoutePattern, location: SourceLocation) throws {
        let tls = try options.upstreams.contains { $0.lowercased().hasPrefix("https://") } ? Self.clientTLS(options, location) : nil
        balancer = Balancer(options.upstreams.compactMap { Upstream($0, tls: tls) }, balance: options.balance)
        self.options = options
        strippedSegments = options.stripPrefix ? pattern.segments.count : 0
        timeout = .nanoseconds(Int64(options.timeout * 1e9))
        recorder = Self.recording.withLock { $0 }
        if let health = options.health { HealthChecks.start(for: balancer, health) }
    }

    /// The system's roots, or only the route's `ca` certificates.
    private static func clientTLS(_ options: ProxyOptions, _ location: SourceLocation) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = options.ca { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            let source = options.ca.map { "the CA certificates in '\($0)'" } ?? "the system's CA certificates"
            throw ConfigError(diagnostics: [Diagnostic(.error, "proxy: cannot use \(source) to verify https upstreams: \(error)", at: location)])
        }
    }

    public func streamsBody(ofLength length: Int?) -> Bool {
        length.map { $0 > Self.bufferedBody } ?? true
    }

    public func handle(_ request: Request) -> Response {
        var forwarded = forwardedRequest(request)
        // A WebSocket handshake goes on with its `Upgrade` (a hop-by-hop field, removed from any
        // other request): the upstream's `101` turns both connections into a tunnel. Over HTTP/2 the
        // handshake is an extended CONNECT (RFC 8441), without a key: the upstream, on HTTP/1.1,
        // gets an RFC 6455 handshake with one of ours.
        let extendedConnect = request.context.isExtendedConnect
        let tunnel = extendedConnect || request.method == "GET" && (request.headers["Upgrade"]?.lowercased().contains("websocket") ?? false)
        if tunnel {
            forwarded.head.headers.add(name: "Connection", value: "Upgrade")
            forwarded.head.headers.add(name: "Upgrade", value: "websocket")
        }
        if extendedConnect {
            let key = (0..<16).map { _ in UInt8.random(in: 0...255) }
            forwarded.head.headers.replaceOrAdd(name: "Sec-WebSocket-Key", value: Data(key).base64EncodedString())
            if !forwarded.head.headers.contains(name: "Sec-WebSocket-Version") {
                forwarded.head.headers.add(name: "Sec-WebSocket-Version", value: "13")
            }
        }
        let client = request.clientAddress
        let (head, body) = forwarded
        let source = request.context.bodySource
        let recording = recorder.map { recorder in
            (recorder, RecordedExchange(method: request.method, path: request.path, query: request.query, status: 0, headers: [], body: [],
                                        requestBody: request.body))
        }
        return .later { exchange in
            // `start` runs on the client connection's loop: the upstream connection joins it.
            guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else {
                exchange.send(Response(status: 502))
                return
            }
            ProxiedRequest(handler: self, head: head, body: source.map { .streamed($0) } ?? body.map { .whole($0) },
                           order: balancer.order(client: client),
                           exchange: exchange, loop: loop, tunnel: tunnel, extendedConnect: extendedConnect,
                           recording: recording).next()
        }
    }

    /// The request as the upstream gets it; its `uri` lacks the upstream's base path, which each
    /// attempt puts in front.
    func forwardedRequest(_ request: Request) -> (head: HTTPRequestHead, body: ByteBuffer?) {
        var path = request.path
        if strippedSegments > 0 {
            let rest = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(1 + strippedSegments)
            path = "/" + rest.joined(separator: "/")
        }
        var headers = HeaderFields()
        let listed = request.headers.combinedValue("Connection")
        for field in request.headers where !Self.isHopByHop(field.name, listed: listed)
            && !Self.replaced.contains(where: { field.name.asciiCaseInsensitiveEquals($0) }) {
            headers.add(field.name, field.value)
        }
        let trusted = request.context.trustedPeer
        let peer = trusted ?? request.clientAddress
        let scheme = request.context.scheme.rawValue
        let host = request.context.forwardedHost ?? request.headers["Host"] ?? request.host
        let incomingFor = trusted == nil ? nil : request.headers.combinedValue("X-Forwarded-For")
        headers.add("X-Forwarded-For", incomingFor.map { $0 + ", " + peer } ?? peer)
        headers.add("X-Forwarded-Proto", scheme)
        headers.add("X-Forwarded-Host", host)
        let node = peer.contains(":") ? "\"[\(peer)]\"" : peer
        let hop = "for=\(node);proto=\(scheme);host=\"\(host)\""
        let incomingForwarded = trusted == nil ? nil : request.headers.combinedValue("Forwarded")
        headers.add("Forwarded", incomingForwarded.map { $0 + ", " + hop } ?? hop)
        headers.apply(options.headers)
        if let source = request.context.bodySource {
            if let length = source.declaredLength {
                headers.add("Content-Length", String(length))
            } else {
                headers.add("Transfer-Encoding", "chunked")
            }
        } else if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            headers.add("Content-Length", String(request.body.count))
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method),
                                   uri: path + (request.query.map { "?" + $0 } ?? ""))
        head.headers = HTTPHeaders(headers.map { ($0.name, $0.value) })
        return (head, request.body.isEmpty ? nil : ByteBuffer(bytes: request.body))
    }

    /// RFC 9110 §7.6.1: fields for one connection only — the fixed ones and those `Connection` names
    /// (compared without allocating: this runs for every field of every request and answer).
    static func isHopByHop(_ name: String, listed: String?) -> Bool {
        if hopByHop.contains(where: { name.asciiCaseInsensitiveEquals($0) }) { return true }
        guard let listed else { return false }
        return listed.split(separator: ",").contains { token in
            let start = token.drop { $0 == " " || $0 == "\t" }
            guard let last = start.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return false }
            return String(start[...last]).asciiCaseInsensitiveEquals(name)
        }
    }
    private static let hopByHop = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                                   "proxy-authenticate", "proxy-authorization"]
    /// Set by the proxy itself: the client's own copies are dropped (`Content-Length` is the body's).
    private static let replaced = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "content-length"]

    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if let connect = error as? NIOConnectionError {
            return connect.connectionErrors.first.map { describe($0.error) } ?? "cannot connect"
        }
        if case .connectTimeout = error as? NIOCore.ChannelError { return "connect timed out" }
        if case .handshakeFailed(let cause) = error as? NIOSSLError {
            // BoringSSL's own text names the source file it failed in.
            return "\(cause)".contains("CERTIFICATE_VERIFY_FAILED") ? "its TLS certificate could not be verified" : "TLS handshake failed"
        }
        return "\(error)"
    }
}

/// Why an attempt ended without an answer in time.
struct UpstreamTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { what }
}

/// One proxied request, from the first attempt to the last byte of the answer. Lives on the
/// client connection's event loop, as do its upstream connections.
final class ProxiedRequest: @unchecked Sendable {
    // @unchecked: created, used and ended on `loop` only.
    private let handler: ProxyHandler
    private let head: HTTPRequestHead
    private let body: Body?
    private let order: [Upstream]
    private let exchange: any Exchange
    private let loop: any EventLoop
    private let idempotent: Bool
    private var index = 0
    private var upstream: Upstream?
    private var connection: UpstreamConnection?
    private var reused = false
    private var countedInFlight = false
    private var timer: Scheduled<Void>?
    /// The answer: collected whole while `collected` is set, else streamed through `stream`.
    private var answerHead: HTTPResponseHead?
    private var collected: ByteBuffer?
    private var stream: StreamedAnswer?
    private var lastFailure = 502
    /// A WebSocket handshake: its connection is never pooled, and a `101` makes it a tunnel.
    private let tunnel: Bool
    /// The handshake came as an HTTP/2 extended CONNECT: the client's stream is told with a 200.
    private let extendedConnect: Bool
    private var switching: HTTPResponseHead?

    /// `pagi-serve record`: the exchange so far, and whom to tell once the answer is whole.
    private var recording: (recorder: any ProxyRecorder, exchange: RecordedExchange)?

    enum Body {
        case whole(ByteBuffer)
        /// Forwarded as it arrives: once it began to flow, no other upstream can be tried.
        case streamed(any RequestBodySource)
    }
    /// A streamed body began to flow to the current upstream, and has not ended yet.
    private var bodyFlowing = false
    private var bodyFlowed = false

    init(handler: ProxyHandler, head: HTTPRequestHead, body: Body?, order: [Upstream], exchange: any Exchange,
         loop: any EventLoop, tunnel: Bool, extendedConnect: Bool, recording: (any ProxyRecorder, RecordedExchange)?) {
        self.tunnel = tunnel
        self.extendedConnect = extendedConnect
        self.recording = recording.map { (recorder: $0.0, exchange: $0.1) }
        self.handler = handler
        self.head = head
        self.body = body
        self.order = order
        self.exchange = exchange
        self.loop = loop
        idempotent = [.GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE].contains(head.method)
    }

    /// Tries the next upstream, or answers 502/504 when none is left.
    func next() {
        guard index < order.count else {
            exchange.send(Response(status: lastFailure))
            return
        }
        let upstream = order[index]
        index += 1
        self.upstream = upstream
        upstream.inFlight.add(1, ordering: .relaxed)
        countedInFlight = true
        if !tunnel, !isStreamed, let pooled = UpstreamPool.current.take(upstream.origin) {
            send(on: pooled, reused: true)
        } else {
            connect(to: upstream)
        }
    }

    private func connect(to upstream: Upstream) {
        UpstreamConnection.connect(to: upstream, on: loop, timeout: min(handler.timeout, .seconds(10)), tunnel: tunnel).whenComplete { [self] result in
            switch result {
            case .success(let connection): send(on: connection, reused: false)
            case .failure(let error): attemptFailed(error)
            }
        }
    }

    /// A streamed body goes on a new connection: a kept-alive one the upstream closed meanwhile
    /// could only be noticed once the body had begun to flow, too late to try again.
    private var isStreamed: Bool {
        if case .streamed = body { true } else { false }
    }

    private func send(on connection: UpstreamConnection, reused: Bool) {
        self.connection = connection
        self.reused = reused
        var head = self.head
        head.uri = (upstream?.basePath ?? "") + head.uri
        connection.send(head) { [self] event in received(event) }
        switch body {
        case .whole(let bytes):
            connection.write(body: bytes, flush: false)
        case .streamed(let source):
            connection.flush()
            stream(source, to: connection)
            return
        case nil:
            break
        }
        connection.endRequest()
        arm("no answer within the timeout")
    }

    /// The client's body, passed on as it arrives. While the upstream does not take it, the client
    /// is not read (backpressure), for at most `timeout` (504 past it).
    private func stream(_ source: any RequestBodySource, to connection: UpstreamConnection) {
        bodyFlowing = true
        bodyFlowed = true
        connection.onWritable = { [self] in
            timer?.cancel()
            source.resume()
        }
        source.read { [self] part in
            guard bodyFlowing, let current = self.connection, current === connection else { return }
            switch part {
            case .bytes(let bytes):
                connection.write(body: ByteBuffer(bytes: bytes), flush: true)
                if !connection.isWritable {
                    source.pause()
                    arm("the upstream took no more of the request body within the timeout")
                }
            case .end:
                bodyFlowing = false
                connection.onWritable = nil
                connection.endRequest()
                if answerHead == nil { arm("no answer within the timeout") }
            case .failed:
                // The client broke off its body; the engine has answered or closed.
                bodyFlowing = false
                clientLeft()
                exchange.send(Response(status: 400))
            }
        }
    }

    /// `timeout` from now, for the head or the next read.
    private func arm(_ what: String) {
        timer?.cancel()
        timer = loop.scheduleTask(in: handler.timeout) { [self] in
            connection?.close()
            received(.failed(UpstreamTimeout(what: what)))
        }
    }

    private func received(_ event: UpstreamConnection.Event) {
        switch event {
        case .head(let head) where tunnel && head.status == .switchingProtocols:
            timer?.cancel()
            upstream?.answered()
            answerHead = head
            switching = head
        case .head(let head):
            answerHead = head
            upstream?.answered()
            recording?.exchange.status = Int(head.status.code)
            recording?.exchange.headers = headers(of: head).map { ($0.name, $0.value) }
            arm("nothing read within the timeout")
            startAnswer(head)
        case .body(let bytes):
            arm("nothing read within the timeout")
            if collected != nil {
                var bytes = bytes
                collected?.writeBuffer(&bytes)
                if (collected?.readableBytes ?? 0) > ProxyHandler.bufferedAnswer { received(.failed(UpstreamTimeout(what: "a longer answer than announced"))) }
            } else {
                if let kept = recording?.exchange.body.count, kept + bytes.readableBytes <= ProxyHandler.largestRecorded {
                    recording?.exchange.body += bytes.readableBytesView
                } else {
                    recording = nil
                }
                stream?.deliver(bytes)
            }
        case .end where switching != nil:
            // The decoder is still in its callback: the switch goes on at the next turn.
            loop.execute { [self] in becomeTunnel() }
        case .end:
            timer?.cancel()
            endAttempt()
            // A connection still carrying a streamed body (the upstream answered before it ended) is not reused.
            if let connection, answerHead?.isKeepAlive ?? false, !bodyFlowing {
                UpstreamPool.current.give(connection)
            } else {
                connection?.close()
            }
            connection = nil
            if let collected, let answerHead {
                exchange.send(Response(status: Int(answerHead.status.code), headers: headers(of: answerHead),
                                       body: body(of: answerHead, collected)))
                recording?.exchange.body = Array(collected.readableBytesView)
            }
            stream?.finish()
            if let recording { recording.recorder.record(recording.exchange) }
            recording = nil
        case .failed(let error):
            timer?.cancel()
            connection?.close()
            connection = nil
            guard answerHead == nil else {
                // Too late for another upstream: the answer has begun.
                endAttempt()
                ProxyHandler.logger.error("proxy: the answer of \(upstream?.origin ?? "?") broke off: \(ProxyHandler.describe(error))")
                if collected != nil { exchange.send(Response(status: 502)) }
                stream?.abort()
                return
            }
            attemptFailed(error)
        }
    }

    /// The upstream switched protocols: the client gets its `101`, then the connections are glued.
    private func becomeTunnel() {
        endAttempt()
        guard let connection, let head = switching else { return }
        self.connection = nil
        var fields = self.headers(of: head)
        if extendedConnect {
            // RFC 8441 §5: accepted with a 200, which carries no key and no accept.
            fields.remove("Sec-WebSocket-Accept")
        } else {
            fields.add("Connection", "Upgrade")
            fields.add("Upgrade", head.headers.first(name: "Upgrade") ?? "websocket")
        }
        let response = Response(status: extendedConnect ? 200 : 101, headers: fields)
        connection.becomeTunnel().assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let end):
                exchange.switchProtocols(response, to: TunnelUpgrade(upstreamEnd: end))
            case .failure:
                connection.close()
                exchange.send(Response(status: 502))
            }
        }
    }

    /// No answer from the current upstream.
    private func attemptFailed(_ error: any Error) {
        endAttempt()
        guard let upstream else { return }
        if reused && !(error is UpstreamTimeout) {
            // A kept-alive connection the upstream had closed: a fresh one, not a failure.
            reused = false
            upstream.inFlight.add(1, ordering: .relaxed)
            countedInFlight = true
            connect(to: upstream)
            return
        }
        upstream.failed()
        lastFailure = error is UpstreamTimeout ? 504 : 502
        let path = upstream.basePath + head.uri
        let unrepeatable = !idempotent ? " (not retried: \(head.method.rawValue) is not idempotent)"
            : bodyFlowed ? " (not retried: its body was streamed)" : ""
        ProxyHandler.logger.error("proxy: \(head.method.rawValue) \(upstream.origin)\(path) failed: \(ProxyHandler.describe(error))\(unrepeatable)")
        bodyFlowing = false
        if unrepeatable.isEmpty {
            next()
        } else {
            exchange.send(Response(status: lastFailure))
        }
    }

    private func endAttempt() {
        guard countedInFlight else { return }
        countedInFlight = false
        upstream?.inFlight.subtract(1, ordering: .relaxed)
    }

    private func startAnswer(_ head: HTTPResponseHead) {
        let status = Int(head.status.code)
        let length = head.headers.first(name: "Content-Length").flatMap(Int.init)
        if self.head.method == .HEAD || status == 204 || status == 304 || (length ?? .max) <= ProxyHandler.bufferedAnswer {
            collected = ByteBuffer()
            return
        }
        let events = head.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") ?? false
        let answer = StreamedAnswer(request: self, isOpenEnded: events, length: length)
        stream = answer
        exchange.send(Response(status: status, headers: headers(of: head), body: .stream(answer)))
    }

    /// What was collected; for `HEAD`, the length the upstream announced for a `GET`.
    private func body(of answer: HTTPResponseHead, _ collected: ByteBuffer) -> ResponseBody {
        let status = answer.status.code
        if head.method == .HEAD, status >= 200, status != 204, status != 304 {
            return .omitted(length: answer.headers.first(name: "Content-Length").flatMap(Int.init))
        }
        return collected.readableBytes == 0 ? .empty : .bytes(Array(collected.readableBytesView))
    }

    private func headers(of head: HTTPResponseHead) -> HeaderFields {
        var headers = HeaderFields()
        let listed = head.headers["Connection"].joined(separator: ",")
        for field in head.headers where !ProxyHandler.isHopByHop(field.name, listed: listed) {
            headers.add(field.name, field.value)
        }
        return headers
    }

    /// The client is behind: stop reading the upstream until it catches up.
    func pauseUpstream() { connection?.setReading(false) }
    func resumeUpstream() { connection?.setReading(true) }

    /// The client went away before the answer ended: the upstream connection cannot be reused.
    func clientLeft() {
        guard connection != nil else { return }
        timer?.cancel()
        connection?.close()
        connection = nil
        endAttempt()
    }
}

/// A long or open-ended answer, passed on as it arrives: each chunk the upstream sends is written
/// to the client at once (an SSE event is not held back). Past `highWater` bytes queued for the
/// client, the upstream is not read until they drain below `lowWater`.
final class StreamedAnswer: BodyStream, @unchecked Sendable {
    // @unchecked: used on the client connection's loop only, as its `ProxiedRequest`.
    private let request: ProxiedRequest
    let isOpenEnded: Bool
    /// The upstream's `Content-Length`, passed on (a download keeps its progress bar).
    let length: Int?
    private var sink: (any BodySink)?
    private var early: [ByteBuffer] = []
    private var ended: Bool?   // true: finished, false: aborted
    private var paused = false
    static let highWater = 1 << 20
    static let lowWater = 256 * 1024

    init(request: ProxiedRequest, isOpenEnded: Bool, length: Int?) {
        self.request = request
        self.isOpenEnded = isOpenEnded
        self.length = length
    }

    func start(_ sink: any BodySink) {
        self.sink = sink
        sink.onEnd { [self] in if ended == nil { request.clientLeft() } }
        for bytes in early { deliver(bytes) }
        early = []
        if let ended { ended ? sink.finish() : sink.close() }
    }

    func deliver(_ bytes: ByteBuffer) {
        guard let sink else {
            early.append(bytes)
            return
        }
        guard sink.write(Array(bytes.readableBytesView)) else { return }
        if !paused && sink.pendingBytes > Self.highWater {
            paused = true
            request.pauseUpstream()
            waitForDrain()
        }
    }

    private func waitForDrain() {
        sink?.schedule(after: .milliseconds(2)) { [self] in
            guard let sink, paused else { return }
            if sink.pendingBytes < Self.lowWater {
                paused = false
                request.resumeUpstream()
            } else {
                waitForDrain()
            }
        }
    }

    func finish() {
        ended = true
        sink?.finish()
    }

    func abort() {
        ended = false
        sink?.close()
    }
}
