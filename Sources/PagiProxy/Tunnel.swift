import NIOCore
import PagiEngine

/// WebSocket through the proxy (docs/proxy.md): after the upstream's `101`, the client's
/// connection and the upstream's are glued, bytes passed both ways as they come. Written by hand:
/// SwiftNIO ships its "glue handler" only in its examples.
///
/// One `TunnelEnd` per connection, each writing what its partner reads. Backpressure: an end
/// reads only while its partner's channel is writable. A half close (EOF on one side) is passed
/// on as a half close; a full close closes both. Both channels are on one event loop.
final class TunnelEnd: ChannelDuplexHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only (both ends share it).
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: TunnelEnd?
    private var context: ChannelHandlerContext?
    private var readPending = false
    /// What arrived before the partner was there (bytes right behind the upstream's `101`).
    private var early: [ByteBuffer] = []

    static func join(_ one: TunnelEnd, _ other: TunnelEnd) {
        one.partner = other
        other.partner = one
        for bytes in one.early { other.write(bytes) }
        for bytes in other.early { one.write(bytes) }
        (one.early, other.early) = ([], [])
        one.flush()
        other.flush()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let partner else {
            early.append(bytes)
            return
        }
        partner.write(bytes)
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.context?.close(mode: .output, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? true {
            context.read()
        } else {
            readPending = true
        }
    }

    private func write(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }
    private func flush() { context?.flush() }
    private func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }
}

/// Installs the client's end once the engine has written the `101`.
struct TunnelUpgrade: ChannelUpgrade {
    let upstreamEnd: TunnelEnd

    func install(on channel: any Channel) throws {
        let clientEnd = TunnelEnd()
        try channel.pipeline.syncOperations.addHandler(clientEnd)
        TunnelEnd.join(clientEnd, upstreamEnd)
    }
}
