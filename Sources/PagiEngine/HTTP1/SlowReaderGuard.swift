import NIOCore

/// The slow-reader defence (docs/configuration.md §4, `timeouts.write`): while the peer does not
/// take what we wrote, reading stops — a client that pipelines requests without reading the
/// answers meets TCP backpressure instead of growing our memory — and a peer that takes nothing
/// for `timeouts.write` is dropped. It sits behind the HTTP handler (towards the pipeline's tail):
/// the reads the channel asks for pass it, while the handler's writes go straight to the socket
/// without a step through it.
final class SlowReaderGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData

    private let writeTimeout: TimeAmount?
    private var peerReading = true
    private var readRequested = false
    private var writeTimer: Scheduled<Void>?

    /// `writeSeconds` 0 = no write timeout.
    init(writeSeconds: Double) {
        writeTimeout = writeSeconds > 0 ? .fromSeconds(writeSeconds) : nil
    }

    func read(context: ChannelHandlerContext) {
        if peerReading {
            context.read()
        } else {
            readRequested = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        peerReading = context.channel.isWritable
        if peerReading {
            writeTimer?.cancel()
            writeTimer = nil
            passHeldRead(context: context)
        } else if writeTimer == nil, let writeTimeout {
            writeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: writeTimeout) {
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        writeTimer?.cancel()
        writeTimer = nil
        context.fireChannelInactive()
    }

    /// Leaves after a protocol switch (the new protocol has its own flow control): a read held
    /// until then is passed on first, or the connection would never read again.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        writeTimer?.cancel()
        writeTimer = nil
        passHeldRead(context: context)
        context.leavePipeline(removalToken: removalToken)
    }

    private func passHeldRead(context: ChannelHandlerContext) {
        guard readRequested else { return }
        readRequested = false
        context.read()
    }
}
