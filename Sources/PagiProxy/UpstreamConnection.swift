import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A keep-alive HTTP/1.1 connection to an upstream, on the event loop of the client connections
/// it serves (docs/proxy.md). Written on SwiftNIO's HTTP/1 codec rather than taken from
/// async-http-client: measured (bench/results/proxy.md), async-http-client's hops between the
/// server's loop, Swift's executor and its own loops cost 232 µs per proxied request against
/// nginx's 30 µs; on the client's own loop a request costs no thread hop at all.
///
/// Used by one request at a time, then given back to its loop's `UpstreamPool`. Lives on one loop.
final class UpstreamConnection {
    enum Event {
        case head(HTTPResponseHead)
        case body(ByteBuffer)
        case end
        case failed(any Error)
    }

    let channel: any Channel
    let origin: String
    private let reader: UpstreamReader
    /// When it went idle in the pool.
    var idleSince = NIODeadline.now()

    private init(channel: any Channel, origin: String, reader: UpstreamReader) {
        self.channel = channel
        self.origin = origin
        self.reader = reader
    }

    /// Connects to `upstream` from `loop`. `tunnel`: for a protocol switch, after which the bytes
    /// behind the `101` are kept for the tunnel (`becomeTunnel`).
    static func connect(to upstream: Upstream, on loop: any EventLoop, timeout: TimeAmount,
                        tunnel: Bool = false) -> EventLoopFuture<UpstreamConnection> {
        let reader = UpstreamReader()
        let tls = upstream.tls
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: upstream.serverName)) }
                    // The codec alone (no outbound validator, which `addHTTPClientHandlers` adds): the
                    // fields sent were checked when the client's request was parsed, and a tunnel
                    // must be able to take every HTTP handler out.
                    try pipeline.addHandler(HTTPRequestEncoder())
                    try pipeline.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: tunnel ? .forwardBytes : .dropBytes)))
                    try pipeline.addHandler(reader)
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .map { UpstreamConnection(channel: $0, origin: upstream.origin, reader: reader) }
    }

    var isUsable: Bool { channel.isActive && reader.isIdle }

    /// Sends the head of one request; `events` hears its answer (and nothing after `.end` or
    /// `.failed`). Its body follows with `write(body:)` and `endRequest()`.
    func send(_ head: HTTPRequestHead, events: @escaping (Event) -> Void) {
        reader.listener = events
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
    }

    /// A piece of the request body; `flush` when it should leave now (a streamed body).
    func write(body bytes: ByteBuffer, flush: Bool) {
        channel.write(HTTPClientRequestPart.body(.byteBuffer(bytes)), promise: nil)
        if flush { channel.flush() }
    }

    func flush() { channel.flush() }

    func endRequest() {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure { [reader] error in reader.fail(error) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: promise)
    }

    /// The upstream takes what is written (a streamed body pauses while it does not).
    var isWritable: Bool { channel.isWritable }
    /// Called when the upstream drained what was queued for it.
    var onWritable: (() -> Void)? {
        get { reader.onWritable }
        set { reader.onWritable = newValue }
    }

    /// Reading pauses while the client is behind (backpressure).
    func setReading(_ on: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
        if on { channel.read() }
    }

    func close() {
        reader.listener = nil
        reader.onWritable = nil
        channel.close(promise: nil)
    }

    /// After a `101`: HTTP leaves the connection, and a tunnel end takes what follows (the bytes
    /// the decoder held behind the `101` first). Ready once the HTTP handlers are gone: nothing
    /// may be written through them after.
    func becomeTunnel() -> EventLoopFuture<TunnelEnd> {
        let end = TunnelEnd()
        let loop = channel.eventLoop
        do {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(end)
            let removals = [
                pipeline.removeHandler(reader),
                pipeline.removeHandler(try pipeline.handler(type: HTTPRequestEncoder.self)),
                pipeline.removeHandler(try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)),
            ]
            return EventLoopFuture.andAllSucceed(removals, on: loop).map { end }
        } catch {
            return loop.makeFailedFuture(error)
        }
    }
}

/// The end of an upstream connection's pipeline: hands each part of the answer to the request
/// being served.
private final class UpstreamReader: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only.
    typealias InboundIn = HTTPClientResponsePart
    var listener: ((UpstreamConnection.Event) -> Void)?
    var onWritable: (() -> Void)?
    var isIdle: Bool { listener == nil }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the upstream closed the connection" }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): listener?(.head(head))
        case .body(let bytes): listener?(.body(bytes))
        case .end:
            let listener = self.listener
            self.listener = nil
            listener?(.end)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { onWritable?() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        onWritable = nil
        fail(Closed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func fail(_ error: any Error) {
        let listener = self.listener
        self.listener = nil
        listener?(.failed(error))
    }
}

/// Idle keep-alive connections to the upstreams, one pool per event loop (a thread-local): taking
/// and giving back needs no lock. An idle connection is closed after `idleTimeout`, and at most
/// `maxIdle` per upstream are kept.
final class UpstreamPool {
    private var idle: [String: [UpstreamConnection]] = [:]
    static let maxIdle = 128
    static let idleTimeout = TimeAmount.seconds(60)
    // A thread-local: each thread reads and writes its own value only.
    nonisolated(unsafe) private static let pools = ThreadSpecificVariable<UpstreamPool>()

    /// The pool of the calling event loop's thread.
    static var current: UpstreamPool {
        if let pool = pools.currentValue { return pool }
        let pool = UpstreamPool()
        pools.currentValue = pool
        return pool
    }

    func take(_ origin: String) -> UpstreamConnection? {
        while let connection = idle[origin]?.popLast() {
            if connection.isUsable && NIODeadline.now() - connection.idleSince < Self.idleTimeout { return connection }
            connection.close()
        }
        return nil
    }

    func give(_ connection: UpstreamConnection) {
        guard connection.isUsable, idle[connection.origin, default: []].count < Self.maxIdle else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        idle[connection.origin, default: []].append(connection)
    }
}
