/// A body written over time. The engine calls `start` once, on the connection's thread, right
/// after the response head went out.
public protocol BodyStream: Sendable {
    func start(_ sink: any BodySink)
    /// A stream with no end of its own (SSE) is ended cleanly by a graceful shutdown; any other
    /// (a throttled or compressed body) is left to finish within `timeouts.shutdown` — ending it
    /// early would hand the client a shortened body that looks complete.
    var isOpenEnded: Bool { get }
    /// The body's length when it is known in advance (a proxied answer with a `Content-Length`):
    /// it is then sent with that `Content-Length` instead of chunked, and a stream that ends short
    /// of it closes the connection. nil: unknown.
    var length: Int? { get }
}

extension BodyStream {
    public var isOpenEnded: Bool { false }
    public var length: Int? { nil }
}

/// Where a streamed body goes; implemented by the engine. Every method may be called from any
/// thread. Nothing is buffered without bound by the sink itself: a producer that may outrun its
/// client checks `pendingBytes` and gives up (`close()`) past its own limit.
public protocol BodySink: AnyObject, Sendable {
    /// Queues bytes for the client. Returns false once the stream has ended or the client is gone.
    @discardableResult func write(_ bytes: [UInt8]) -> Bool
    /// Bytes queued but not yet taken by the client's socket.
    var pendingBytes: Int { get }
    /// Ends the body normally (the connection may then serve the next request).
    func finish()
    /// Ends the body and closes the connection (a slow reader is dropped, the server shuts down).
    func close()
    /// Runs `work` after `delay` on the connection's thread, unless the stream has ended by then.
    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void)
    /// Called once, on the connection's thread, when the stream ends for any reason
    /// (finished, closed, client gone, server shutting down).
    func onEnd(_ handler: @escaping @Sendable () -> Void)
}

/// What takes the connection over after a protocol switch (`Response.switching`).
/// The engine knows the concrete kinds (its `ChannelUpgrade` protocol); the core only carries it.
public protocol ConnectionUpgrade: Sendable {}

/// A body sent at most `bytesPerSecond`, in small chunks (`respond: {throttle}`).
public struct ThrottledBody: BodyStream {
    public let bytes: [UInt8]
    public let bytesPerSecond: Int
    /// Chunks go out ten times a second: smooth enough for a client to see a steady trickle.
    static let ticksPerSecond = 10

    public init(bytes: [UInt8], bytesPerSecond: Int) {
        self.bytes = bytes
        self.bytesPerSecond = max(1, bytesPerSecond)
    }

    public func start(_ sink: any BodySink) {
        send(from: 0, to: sink)
    }

    private func send(from offset: Int, to sink: any BodySink) {
        guard offset < bytes.count else {
            sink.finish()
            return
        }
        let chunk = max(1, bytesPerSecond / Self.ticksPerSecond)
        let end = min(bytes.count, offset + chunk)
        guard sink.write(Array(bytes[offset..<end])) else { return }
        if end == bytes.count {
            sink.finish()
            return
        }
        // A chunk smaller than a tick's worth (low rates) waits proportionally longer.
        let wait = Duration.milliseconds(1000 * (end - offset) / bytesPerSecond)
        sink.schedule(after: max(wait, .milliseconds(1))) { send(from: end, to: sink) }
    }
}

/// A handler that can take a request body as it arrives rather than whole (`proxy`; docs/proxy.md,
/// "Streamed uploads"): for the requests it says yes to, the engine routes once the head is in and
/// hands the body over through `request.context.bodySource`, so a large upload never sits in memory.
/// Only routes without `body_json` conditions qualify (those need the body to route).
public protocol StreamsRequestBody: Handler {
    /// Whether a body of `length` bytes (nil: chunked, length unknown) is streamed to this handler.
    func streamsBody(ofLength length: Int?) -> Bool
}

/// What a streamed request body delivers, in order: bytes, then `.end` or `.failed`.
public enum RequestBodyPart: Sendable {
    case bytes([UInt8])
    case end
    /// The body broke off: the client went away, sent it too slowly or too much (the engine has
    /// answered or closed; the handler's answer is not sent).
    case failed
}

/// A request body still arriving; implemented by the engine. Used on the connection's thread only.
/// Nothing is read from the client until `read` is called, nor while paused: a handler's slow
/// destination slows the client down through TCP instead of filling memory.
public protocol RequestBodySource: AnyObject, Sendable {
    /// The length the client declared (`Content-Length`), nil for a chunked body.
    var declaredLength: Int? { get }
    /// Starts the delivery; `consumer` is called on the connection's thread for each part.
    func read(_ consumer: @escaping (RequestBodyPart) -> Void)
    func pause()
    func resume()
}
