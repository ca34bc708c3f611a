import NIOCore
import NIOWebSocket
import PagiCore

/// One WebSocket connection after the handshake (RFC 6455 §5–§7): reassembles fragmented
/// messages between interleaved control frames, validates text as UTF-8 as it arrives, answers
/// pings, runs the close handshake, inflates/deflates with permessage-deflate, keeps the peer
/// alive with pings, and never lets outbound data pile up without bound.
final class WebSocketConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum State {
        case open
        /// Our close frame is out; waiting for the peer's (or the timeout).
        case closing
        case closed
    }

    /// A message being received, possibly over several frames.
    private struct Incoming {
        var isText: Bool
        var compressed: Bool
        var data: ByteBuffer
        var utf8 = UTF8StreamValidator()
    }

    /// How long the peer has to answer our close frame before the connection is cut.
    static let closeTimeout = TimeAmount.seconds(3)

    private let session: WebSocketSession
    private let deflate: PerMessageDeflate?
    private var state = State.open
    private var incoming: Incoming?
    private var subscription: ChannelSubscription?
    private var needsFlush = false
    /// Reads are held while the peer does not take what we send (echo backpressure).
    private var readPending = false
    private var awaitingPong = false
    private var lastActivity = NIODeadline.now()
    private var pingTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?

    init(session: WebSocketSession) {
        self.session = session
        self.deflate = session.deflate.map(PerMessageDeflate.init(parameters:))
    }

    private var options: WebSocketOptions { session.options }

    // MARK: - Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        schedulePing(context: context)
        scheduleIdleCheck(context: context)
        switch session.role {
        case .echo: break
        case .broadcast(let channel), .subscribe(let channel):
            let loop = context.eventLoop
            let member = NIOLoopBound((connection: self, context: context), eventLoop: loop)
            subscription = session.broker.subscribe(channel) { message in
                loop.execute { member.value.connection.deliver(message, context: member.value.context) }
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    private func tearDown() {
        state = .closed
        incoming = nil
        subscription?.cancel()
        subscription = nil
        for timer in [pingTimer, idleTimer, closeTimer] { timer?.cancel() }
        pingTimer = nil
        idleTimer = nil
        closeTimer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if state == .open { startClose(CloseCode.goingAway, reason: "server shutting down", context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard state == .open else { return }
        switch error as? NIOWebSocketError {
        case .invalidFrameLength:
            startClose(CloseCode.messageTooBig, reason: "frame too large", context: context)
        case .fragmentedControlFrame, .multiByteControlFrameLength:
            startClose(CloseCode.protocolError, reason: "invalid control frame", context: context)
        case nil:
            // Socket errors (reset by peer…) end this connection only.
            context.close(promise: nil)
        }
    }

    // MARK: - Receiving

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch state {
        case .open:
            receive(frame, context: context)
        case .closing:
            // Only the peer's close frame matters now; it completes the handshake.
            if frame.opcode == .connectionClose { context.close(promise: nil) }
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    private func receive(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard frame.maskKey != nil else {
            return startClose(CloseCode.protocolError, reason: "client frames must be masked", context: context)
        }
        guard !frame.rsv2, !frame.rsv3 else {
            return startClose(CloseCode.protocolError, reason: "reserved bits set", context: context)
        }
        // RSV1 marks a compressed message: only on its first frame, only when negotiated.
        let rsv1Allowed = deflate != nil && (frame.opcode == .text || frame.opcode == .binary)
        guard !frame.rsv1 || rsv1Allowed else {
            return startClose(CloseCode.protocolError, reason: "unexpected RSV1", context: context)
        }
        switch frame.opcode {
        case .text, .binary:
            guard incoming == nil else {
                return startClose(CloseCode.protocolError, reason: "new message before the previous one ended", context: context)
            }
            incoming = Incoming(isText: frame.opcode == .text, compressed: frame.rsv1, data: ByteBuffer())
            receiveFragment(frame, context: context)
        case .continuation:
            guard incoming != nil else {
                return startClose(CloseCode.protocolError, reason: "continuation without a message", context: context)
            }
            receiveFragment(frame, context: context)
        case .ping:
            write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData), context: context)
        case .pong:
            awaitingPong = false
        case .connectionClose:
            receiveClose(frame, context: context)
        default:
            startClose(CloseCode.protocolError, reason: "reserved opcode", context: context)
        }
    }

    private func receiveFragment(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard var message = incoming else { return }
        incoming = nil  // edited outside the property so its buffer is not copied
        let payload = frame.unmaskedData
        let start = message.data.writerIndex
        if message.compressed, let deflate {
            do {
                try deflate.decompress(payload, isFinal: frame.fin, into: &message.data, limit: options.maxMessage)
            } catch PerMessageDeflate.Failure.tooLarge {
                return startClose(CloseCode.messageTooBig, reason: "message too large", context: context)
            } catch {
                return startClose(CloseCode.invalidPayload, reason: "invalid compressed data", context: context)
            }
        } else {
            guard message.data.readableBytes + payload.readableBytes <= options.maxMessage else {
                return startClose(CloseCode.messageTooBig, reason: "message too large", context: context)
            }
            if message.data.readableBytes == 0 && frame.fin {
                message.data = payload  // a whole message in one frame: no copy
            } else {
                var chunk = payload
                message.data.writeBuffer(&chunk)
            }
        }
        if message.isText {
            let added = message.data.getSlice(at: start, length: message.data.writerIndex - start) ?? ByteBuffer()
            guard message.utf8.feed(added), !frame.fin || message.utf8.isComplete else {
                return startClose(CloseCode.invalidPayload, reason: "invalid UTF-8 in text message", context: context)
            }
        }
        if frame.fin {
            handle(message.data, isText: message.isText, context: context)
        } else {
            incoming = message
        }
    }

    /// A complete message from the peer.
    private func handle(_ message: ByteBuffer, isText: Bool, context: ChannelHandlerContext) {
        lastActivity = .now()
        switch session.role {
        case .echo:
            send(message, isText: isText, context: context)
        case .broadcast(let channel):
            session.broker.publish(ChannelMessage(data: Array(message.readableBytesView), isText: isText), to: channel) { _ in }
        case .subscribe:
            // Documented choice: a read-only feed refuses data instead of silently dropping it.
            startClose(CloseCode.unsupportedData, reason: "this endpoint is read-only", context: context)
        }
    }

    /// The peer's close frame: answer it (echoing its code when valid) and close the TCP
    /// connection, which the server does first (§7.1.1).
    private func receiveClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var payload = frame.unmaskedData
        var reply = CloseCode.normal
        if payload.readableBytes == 1 {
            reply = CloseCode.protocolError
        } else if let code = payload.readInteger(as: UInt16.self) {
            var validator = UTF8StreamValidator()
            if !CloseCode.isValidOnWire(code) {
                reply = CloseCode.protocolError
            } else if !validator.feed(payload) || !validator.isComplete {
                reply = CloseCode.invalidPayload
            } else {
                reply = code
            }
        }
        tearDown()
        let closed = context.writeAndFlush(wrapOutboundOut(closeFrame(reply, reason: "", context: context)))
        closed.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: - Sending

    /// A message from the member's channel (broadcast and subscribe).
    private func deliver(_ message: ChannelMessage, context: ChannelHandlerContext) {
        guard state == .open else { return }
        lastActivity = .now()
        send(context.channel.allocator.buffer(bytes: message.data), isText: message.isText, context: context)
        flushIfNeeded(context: context)
        // A member that does not read its messages is dropped before its backlog grows without bound.
        let backlog = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        if backlog > options.sendBuffer {
            startClose(CloseCode.policyViolation, reason: "client too slow", context: context)
        }
    }

    private func send(_ message: ByteBuffer, isText: Bool, context: ChannelHandlerContext) {
        var payload = message
        var compressed = false
        if let deflate, message.readableBytes > 0 {
            do {
                payload = try deflate.compress(message, allocator: context.channel.allocator)
                compressed = true
            } catch {
                return startClose(CloseCode.internalError, reason: "compression failed", context: context)
            }
        }
        write(WebSocketFrame(fin: true, rsv1: compressed, opcode: isText ? .text : .binary, data: payload), context: context)
    }

    private func write(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    /// Sends our close frame; the connection ends when the peer answers or after `closeTimeout`.
    private func startClose(_ code: UInt16, reason: String, context: ChannelHandlerContext) {
        guard state == .open else { return }
        tearDown()
        state = .closing
        context.writeAndFlush(wrapOutboundOut(closeFrame(code, reason: reason, context: context)), promise: nil)
        needsFlush = false
        closeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeTimeout) {
            context.close(promise: nil)
        }
    }

    private func closeFrame(_ code: UInt16, reason: String, context: ChannelHandlerContext) -> WebSocketFrame {
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(code)
        payload.writeString(reason)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
    }

    // MARK: - Backpressure (echo): stop reading while the peer does not drain our writes

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Timers

    /// Every `ping_interval`: a ping; a peer that has not answered the previous one is gone.
    private func schedulePing(context: ChannelHandlerContext) {
        guard options.pingInterval > 0 else { return }
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .interval(options.pingInterval)) { [self] in
            guard state == .open else { return }
            if awaitingPong {
                return startClose(CloseCode.internalError, reason: "ping timeout", context: context)
            }
            awaitingPong = true
            write(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer()), context: context)
            flushIfNeeded(context: context)
            schedulePing(context: context)
        }
    }

    /// Closes after `idle_timeout` without a message in either direction.
    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        guard options.idleTimeout > 0 else { return }
        let deadline = lastActivity + .interval(options.idleTimeout)
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard state == .open else { return }
            if NIODeadline.now() >= lastActivity + .interval(options.idleTimeout) {
                startClose(CloseCode.goingAway, reason: "idle timeout", context: context)
            } else {
                scheduleIdleCheck(context: context)
            }
        }
    }
}

extension TimeAmount {
    /// A duration in (fractional) seconds, as the config gives it.
    static func interval(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64(seconds * 1_000_000_000)) }
}
