import NIOCore
import NIOHTTP2

/// A stream that carries another protocol's bytes after an extended CONNECT (RFC 8441: a
/// WebSocket; docs/http2.md): DATA frames in become bytes for that protocol's handlers, their
/// bytes go out as DATA frames, and when they close, the stream ends with END_STREAM.
final class HTTP2StreamBytes: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let connection: HTTP2Connection
    private var ended = false
    /// Bytes written since the last flush, sent as one DATA frame (a WebSocket frame's header and
    /// payload are two writes: two frames would cost 9 bytes more and a frame more to parse).
    private var pending: ByteBuffer?
    private var pendingPromises: [EventLoopPromise<Void>] = []

    init(connection: HTTP2Connection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Trailers or anything but DATA carry nothing for the protocol.
        guard case .data(let frame) = unwrapInboundIn(data) else { return }
        if case .byteBuffer(let bytes) = frame.data, bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
        if frame.endStream { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        if pending == nil { pending = bytes } else { pending?.writeBuffer(&bytes) }
        if let promise { pendingPromises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        writePending(context: context, endStream: false)
        context.flush()
    }

    private func writePending(context: ChannelHandlerContext, endStream: Bool) {
        guard pending != nil || endStream else { return }
        let promises = pendingPromises
        pendingPromises = []
        let written: EventLoopPromise<Void>? = promises.isEmpty ? nil : context.eventLoop.makePromise()
        written?.futureResult.whenComplete { result in
            for promise in promises { promise.completeWith(result) }
        }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(pending ?? ByteBuffer()), endStream: endStream))), promise: written)
        pending = nil
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !ended, context.channel.isActive {
            ended = true
            writePending(context: context, endStream: true)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The stream handler it replaced counted the stream open (idle timer, graceful shutdown).
        connection.streamEnded()
        context.fireChannelInactive()
    }
}
