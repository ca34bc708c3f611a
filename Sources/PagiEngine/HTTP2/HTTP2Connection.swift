import NIOCore
import NIOHTTP2
import NIOPosix

/// What the streams of one HTTP/2 connection share (docs/http2.md), and the handler that sets the
/// connection up and ends it: SETTINGS from the server's limits, an idle timeout, and a graceful
/// shutdown that sends GOAWAY, lets open streams finish (an SSE stream ends at once) and closes.
///
/// NIOHTTP2 carries the defences at the frame level: Rapid Reset (CVE-2023-44487) and other
/// "glitches", CONTINUATION floods, control-frame floods, HPACK tables bounded by our SETTINGS,
/// flow control. What is left to us is the request level: limits on headers and bodies, timeouts.
final class HTTP2Connection: ChannelInboundHandler, NIOHTTP2FrameDelegate, @unchecked Sendable {
    // @unchecked: every member is touched on the connection's event loop only (the handler's
    // callbacks, NIOHTTP2's frame delegate calls and the streams' handlers all run there).
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let peerIP: String
    let tls: TLSSession?
    let clientSubject: String?
    let fileReader = NonBlockingFileIO(threadPool: .singleton)
    private let idleTimeout: TimeAmount
    private var openStreams = 0
    private var draining = false
    private var idleTimer: Scheduled<Void>?
    private weak var channel: (any Channel)?

    private init(channel: any Channel, tls: TLSSession?, idleSeconds: Double) {
        self.channel = channel
        peerIP = channel.remoteAddress?.ipAddress ?? "-"
        self.tls = tls
        clientSubject = tls == nil ? nil : ClientCertificate.subject(in: channel.pipeline.syncOperations)
        idleTimeout = .nanoseconds(Int64(max(idleSeconds, 1) * 1e9))
    }

    /// Makes `channel` — TLS after ALPN chose `h2`, or cleartext that began with the HTTP/2
    /// preface — speak HTTP/2; each stream the client opens gets an `HTTP2StreamHandler`.
    static func configure(_ channel: any Channel, server: ServerContext, tls: TLSSession?) throws {
        let connection = HTTP2Connection(channel: channel, tls: tls, idleSeconds: server.server.timeouts.idle)
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            // The same budget for a request head as on HTTP/1.1 (`limits.header_bytes`).
            HTTP2Setting(parameter: .maxHeaderListSize, value: server.parserLimits.headerBytes),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
            // WebSockets over streams (RFC 8441): extended CONNECT with `:protocol`.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        configuration.targetWindowSize = 1 << 20
        var streams = NIOHTTP2Handler.StreamConfiguration()
        streams.targetWindowSize = 1 << 20
        let pipeline = channel.pipeline.syncOperations
        // NIOHTTP2's frame delegate (which sees the GOAWAY it sends) comes with its standalone
        // stream multiplexer only, not with the inline one.
        try pipeline.addHandler(NIOHTTP2Handler(mode: .server, frameDelegate: connection, connectionConfiguration: configuration,
                                                streamConfiguration: streams))
        try pipeline.addHandler(HTTP2StreamMultiplexer(mode: .server, channel: channel, targetWindowSize: 1 << 20,
                                                       inboundStreamInitializer: { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2StreamHandler(server: server, connection: connection))
            }
        }))
        try pipeline.addHandler(connection)
        connection.armIdleTimer()
    }

    /// Concurrent streams a client may open (RFC 9113 recommends at least 100).
    static let maxConcurrentStreams = 128

    /// A GOAWAY for an error (RFC 9113 §5.4.1): the connection MUST close once it is sent. NIOHTTP2
    /// writes it and reports the error, but leaves the close to us.
    func wroteFrame(_ frame: HTTP2Frame) {
        guard case .goAway(_, let code, _) = frame.payload, code != .noError, let channel else { return }
        // The next turn of the loop: the frame is flushed first.
        channel.eventLoop.execute { channel.close(promise: nil) }
    }

    /// A stream's handler was added (`HTTP2StreamHandler`).
    func streamOpened() {
        openStreams += 1
        idleTimer?.cancel()
        idleTimer = nil
    }

    /// A stream's channel closed.
    func streamEnded() {
        openStreams -= 1
        guard openStreams == 0 else { return }
        if draining {
            self.channel?.close(promise: nil)
        } else {
            armIdleTimer()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, !draining {
            draining = true
            // No new stream: the client learns which ones will still be answered (all it opened).
            let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
            context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
            if openStreams == 0 { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        context.fireChannelInactive()
    }

    /// A connection without a stream for `timeouts.keepalive` is closed, as an idle HTTP/1.1 one is (`timeouts.idle`).
    private func armIdleTimer() {
        guard let channel else { return }
        idleTimer?.cancel()
        idleTimer = channel.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [weak self] in
            guard let self, openStreams == 0 else { return }
            self.channel?.close(promise: nil)
        }
    }
}
