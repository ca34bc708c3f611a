import Atomics
import NIOCore
import NIOHTTP2
import PagiCore

/// The engine's `BodySink`: writes a streamed body onto one channel — as HTTP/1.1 chunks, as raw
/// bytes of the length its head announced, as raw bytes until the connection closes for an HTTP/1.0
/// client, or as the DATA frames of an HTTP/2 stream. Callable from any thread; everything touching
/// the channel hops to its event loop.
final class ChannelBodySink: BodySink {
    enum Framing: Equatable {
        case chunked
        /// `Content-Length` was sent: bytes past it are not written, and a body that ends short of
        /// it closes the connection (the client then knows it is incomplete).
        case length(Int)
        case untilClose
        case http2
    }

    private let loop: any EventLoop
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let framing: Framing
    private let ended = ManagedAtomic(false)
    private let pending = ManagedAtomic(0)
    /// The most ever queued: a stream that held much is followed by a `MemoryTrim` when it ends.
    private let mostPending = ManagedAtomic(0)
    private let endHandlers: NIOLoopBoundBox<[@Sendable () -> Void]>
    /// What is still owed of a body of announced length (`.length`).
    private let owed: NIOLoopBoundBox<Int>
    /// Tells the connection the stream is over; `closeConnection` when it must not be reused.
    private let onFinished: NIOLoopBound<(_ closeConnection: Bool) -> Void>

    init(context: ChannelHandlerContext, framing: Framing, onFinished: @escaping (_ closeConnection: Bool) -> Void) {
        loop = context.eventLoop
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.framing = framing
        endHandlers = NIOLoopBoundBox([], eventLoop: context.eventLoop)
        let announced = if case .length(let length) = framing { length } else { 0 }
        owed = NIOLoopBoundBox(announced, eventLoop: loop)
        self.onFinished = NIOLoopBound(onFinished, eventLoop: context.eventLoop)
    }

    var pendingBytes: Int { pending.load(ordering: .relaxed) }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        guard !ended.load(ordering: .acquiring) else { return false }
        guard !bytes.isEmpty else { return true }
        let queued = pending.wrappingIncrementThenLoad(by: bytes.count, ordering: .relaxed)
        if queued > mostPending.load(ordering: .relaxed) { mostPending.store(queued, ordering: .relaxed) }
        onLoop { [self] in
            guard !ended.load(ordering: .acquiring) else { return }
            let context = context.value
            var buffer = context.channel.allocator.buffer(capacity: bytes.count + 16)
            switch framing {
            case .chunked:
                buffer.writeString(String(bytes.count, radix: 16))
                buffer.writeStaticString("\r\n")
                buffer.writeBytes(bytes)
                buffer.writeStaticString("\r\n")
            case .length:
                let allowed = bytes.prefix(owed.value)
                owed.value -= allowed.count
                buffer.writeBytes(allowed)
            case .untilClose, .http2:
                buffer.writeBytes(bytes)
            }
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { [pending] _ in
                pending.wrappingDecrement(by: bytes.count, ordering: .relaxed)
            }
            context.writeAndFlush(Self.wrap(buffer, framing: framing, end: false), promise: written)
        }
        return true
    }

    func finish() {
        onLoop { [self] in
            guard end() else { return }
            let context = context.value
            switch framing {
            case .chunked:
                context.writeAndFlush(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(staticString: "0\r\n\r\n"))),
                                      promise: nil)
            case .http2:
                context.writeAndFlush(Self.wrap(ByteBuffer(), framing: .http2, end: true), promise: nil)
            case .untilClose, .length:
                break
            }
            // Without framing only closing the connection tells the client the body is complete;
            // with a length, only closing tells it the body fell short.
            onFinished.value(framing == .untilClose || owed.value > 0)
        }
    }

    func close() {
        onLoop { [self] in
            guard end() else { return }
            onFinished.value(true)
        }
    }

    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) {
        let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        loop.scheduleTask(in: .nanoseconds(nanoseconds)) { [ended] in
            if !ended.load(ordering: .acquiring) { work() }
        }
    }

    func onEnd(_ handler: @escaping @Sendable () -> Void) {
        onLoop { [self] in
            if ended.load(ordering: .acquiring) {
                handler()
            } else {
                endHandlers.value.append(handler)
            }
        }
    }

    /// The connection went away under the stream.
    func connectionClosed() {
        _ = end()
    }

    /// Marks the stream ended and runs the end handlers, once. Returns false if it had ended already.
    private func end() -> Bool {
        guard ended.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        if mostPending.load(ordering: .relaxed) >= MemoryTrim.threshold { MemoryTrim.soon(on: loop) }
        let handlers = endHandlers.value
        endHandlers.value = []
        for handler in handlers { handler() }
        return true
    }

    private static func wrap(_ buffer: ByteBuffer, framing: Framing, end: Bool) -> NIOAny {
        guard framing == .http2 else { return NIOAny(IOData.byteBuffer(buffer)) }
        return NIOAny(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(buffer), endStream: end)))
    }

    private func onLoop(_ work: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { work() } else { loop.execute(work) }
    }
}
