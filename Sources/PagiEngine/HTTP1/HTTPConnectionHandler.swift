#if canImport(Glibc)
import Glibc
#endif
import Atomics
import NIOCore
import PagiConfig
import PagiCore

/// One HTTP/1.1 connection: parses requests off the byte stream, answers them in order
/// (pipelining), and enforces the timeouts of docs/configuration.md §4. After a protocol error it answers,
/// closes, and reads nothing more, so a smuggled second request is never seen.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let server: ServerContext
    private var parser: RequestParser
    private var buffer = ByteBuffer()

    /// The request being received.
    private struct Pending {
        var head: RequestHead
        var request: Request?
        var body: [UInt8] = []
        var started: NIODeadline
        /// The table that routes this request, loaded once: a reload swaps tables between requests.
        var table: RoutingTable
        /// A `body_limit` smaller than the server's, checked while the body arrives.
        var bodyLimit: Int?
    }
    private var pending: Pending?
    private var keepAlive = true
    /// Set once the connection must not start another request (error, `Connection: close`, shutdown).
    private var closing = false
    /// Reads are held while the peer does not drain what we wrote (backpressure).
    private var readHeld = false
    private var readRequested = false
    private var responsesInFlight = 0
    /// Looked up once: `remoteAddress` costs a getpeername(2) per call.
    private var peer: SocketAddress?
    private var peerIP = "-"
    /// A protocol error was answered; the connection only lingers until it closes.
    private var failed = false
    /// A response is still being prepared (deferred or delayed): nothing further is parsed until
    /// it is sent, so pipelined responses stay in order.
    private var awaitingResponse = false
    private var delayTimer: Scheduled<Void>?
    /// The streamed body being written, if any.
    private var stream: ChannelBodySink?

    /// Waiting for a request head: until when, and whether a partial head is then answered 408.
    private var waitDeadline: NIODeadline?
    private var waitAnswers408 = false
    /// One task serves many requests: re-arming only moves `waitDeadline`, and the task re-schedules
    /// itself when it fires early. That saves a timer-heap insert and removal on every request.
    private var waitTask: Scheduled<Void>?
    private var waitTaskFiresAt: NIODeadline?
    private var bodyTimer: Scheduled<Void>?
    private var writeTimer: Scheduled<Void>?

    init(server: ServerContext) {
        self.server = server
        self.parser = RequestParser(limits: server.parserLimits)
    }

    // MARK: - Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        peer = context.remoteAddress
        peerIP = peer?.ipAddress ?? "-"
        // The first request gets the header timeout from the moment the connection is open.
        scheduleWaitTimer(context: context, seconds: server.server.timeouts.header, answer408: false)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        stream?.connectionClosed()
        stream = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            closing = true
            keepAlive = false
            // An open-ended stream (SSE) would never drain by itself: end it now.
            stream?.finish()
            if pending == nil && parser.isIdle && responsesInFlight == 0 && !awaitingResponse { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Socket errors (reset by peer…) end this connection only.
        server.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing || pending != nil || !parser.isIdle else { return }
        var incoming = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            // The common case takes the read buffer as it is: no copy.
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        process(context: context)
    }

    /// Nothing is buffered without bound while a response is still being produced (delayed,
    /// deferred or streaming): past one request head's worth of early input, reading stops, so a
    /// client that keeps sending meets TCP backpressure instead of growing our memory.
    private var inputPaused: Bool {
        (awaitingResponse || stream != nil) && buffer.readableBytes >= server.parserLimits.headerBytes
    }

    private func resumeReadingIfWanted(context: ChannelHandlerContext) {
        guard readRequested, !readHeld, !inputPaused else { return }
        readRequested = false
        context.read()
    }

    private func process(context: ChannelHandlerContext) {
        // A streamed body is a response still being sent: what is pipelined behind it waits its turn.
        while !readHeld && !awaitingResponse && stream == nil {
            if closing && pending == nil && parser.isIdle { return }
            let wasIdle = parser.isIdle && pending == nil
            let event: ParseEvent?
            do {
                event = try parser.next(&buffer)
            } catch {
                fail(error, context: context)
                return
            }
            guard let event else {
                if wasIdle && buffer.readableBytes > 0 && waitTimerIsIdle {
                    // Bytes of a new request arrived: the head must now complete within `timeouts.header`.
                    scheduleWaitTimer(context: context, seconds: server.server.timeouts.header, answer408: true)
                }
                break
            }
            switch event {
            case .head(let head):
                cancelWaitTimer()
                startRequest(head, context: context)
            case .body(var chunk):
                guard let received = pending?.body.count else { break }
                if let limit = pending?.bodyLimit, received + chunk.readableBytes > limit {
                    fail(ProtocolError(status: 413, reason: "request body over the route's body_limit"), context: context)
                    return
                }
                pending?.body.append(contentsOf: chunk.readBytes(length: chunk.readableBytes) ?? [])
                scheduleBodyTimer(context: context)
            case .end:
                bodyTimer?.cancel()
                bodyTimer = nil
                finishRequest(context: context)
            }
        }
        if buffer.readableBytes == 0 {
            // Idle connections hold no buffer memory (thousands of keep-alive clients add up).
            buffer = Self.noBytes
        } else {
            buffer.discardReadBytes()
        }
        resumeReadingIfWanted(context: context)
    }

    private static let noBytes = ByteBuffer()

    private func startRequest(_ head: RequestHead, context: ChannelHandlerContext) {
        keepAlive = Self.keepsAlive(head) && !closing
        // Built in place: a copy of the pending request would retain and release every string in it.
        let table = server.tables.table
        pending = Pending(head: head, request: nil, started: .now(), table: table)
        do {
            pending?.request = try RequestValidation.makeRequest(head, clientAddress: peerIP, knownMethods: table.knownMethods)
        } catch {
            fail(error, context: context)
            return
        }
        if !server.trustedProxies.isEmpty { pending?.request?.believeForwarding(from: server.trustedProxies, peer: peerIP) }
        if head.framing != .none, let request = pending?.request, let limit = table.bodyLimit(for: request) {
            // `body_limit` (docs/configuration.md §10): refused before reading when the length is known.
            if case .length(let length) = head.framing, length > limit {
                fail(ProtocolError(status: 413, reason: "request body over the route's body_limit"), context: context)
                return
            }
            pending?.bodyLimit = limit
        }
        if head.framing != .none {
            if head.expectsContinue {
                var interim = context.channel.allocator.buffer(capacity: 25)
                interim.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
                context.writeAndFlush(NIOAny(IOData.byteBuffer(interim)), promise: nil)
            }
            scheduleBodyTimer(context: context)
        }
    }

    /// Persistence (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `keep-alive`.
    private static func keepsAlive(_ head: RequestHead) -> Bool {
        var close = false
        var keepAlive = false
        for field in head.headers where field.name.asciiCaseInsensitiveEquals("connection") {
            for token in field.value.split(separator: ",") {
                let option = token.trimmingOWS
                if option.asciiCaseInsensitiveEquals("close") { close = true }
                if option.asciiCaseInsensitiveEquals("keep-alive") { keepAlive = true }
            }
        }
        return head.versionMinor >= 1 ? !close : keepAlive && !close
    }

    private func finishRequest(context: ChannelHandlerContext) {
        // Taken out rather than copied: a copy of a request retains every string in it.
        guard var finished = pending.take(), var request = finished.request.take() else { return }
        request.body = finished.body
        if !keepAlive { closing = true }
        let response = finished.table.respond(to: &request)
        deliver(response, for: request, table: finished.table, started: finished.started, context: context)
    }

    /// Sends a response, first waiting for it when it is deferred or delayed, or misbehaves as asked.
    private func deliver(_ response: Response, for request: Request, table: RoutingTable, started: NIODeadline,
                         context: ChannelHandlerContext) {
        if let deferred = response.deferred {
            awaitingResponse = true
            let loop = context.eventLoop
            let resume = NIOLoopBound({ [self] (response: Response, continued: Request?) in
                resumeDelivery(response, for: continued ?? request, table: table, started: started, context: context)
            }, eventLoop: loop)
            let completed = ManagedAtomic(false)
            deferred.start { response, continued in
                guard completed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
                loop.execute { resume.value(response, continued) }
            }
            return
        }
        if let delay = response.delay {
            awaitingResponse = true
            var undelayed = response
            undelayed.delay = nil
            let (seconds, attoseconds) = delay.components
            delayTimer = context.eventLoop.assumeIsolated().scheduleTask(
                in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) { [self] in
                delayTimer = nil
                resumeDelivery(undelayed, for: request, table: table, started: started, context: context)
            }
            return
        }
        if let fault = response.fault {
            misbehave(fault, context: context)
            return
        }
        if response.status == 101, let upgrade = response.upgrade as? any ChannelUpgrade {
            switchProtocols(response, upgrade: upgrade, for: request, observer: table.observer, started: started, context: context)
            return
        }
        guard ErrorResponses.needsBody(response) else {
            send(response, for: request, observer: table.observer, started: started, context: context)
            return
        }
        var answer = response
        table.fillErrorBody(&answer, for: request)
        send(answer, for: request, observer: table.observer, started: started, context: context)
    }

    private func resumeDelivery(_ response: Response, for request: Request, table: RoutingTable, started: NIODeadline,
                                context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        awaitingResponse = false
        deliver(response, for: request, table: table, started: started, context: context)
        if !awaitingResponse { process(context: context) }
    }

    /// `respond: {fault}`: a reset, a silent close, or bytes that are not HTTP.
    private func misbehave(_ fault: Fault, context: ChannelHandlerContext) {
        cancelTimers()
        closing = true
        switch fault {
        case .reset:
            // SO_LINGER with a zero timeout makes close(2) send RST instead of FIN.
            if let socket = context.channel as? any SocketOptionProvider {
                socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                context.close(promise: nil)
            }
        case .empty:
            context.close(promise: nil)
        case .malformed:
            let garbage = context.channel.allocator.buffer(staticString: "HTTP/1.1 2x0 \u{1}\r\nContent-Length: -1\r\nbroken header line\r\n\r\n\u{0}")
            context.writeAndFlush(NIOAny(IOData.byteBuffer(garbage))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Writes the 101 head, lets the new protocol install its handlers, gives them what was
    /// already read past the request, and leaves the pipeline.
    private func switchProtocols(_ response: Response, upgrade: any ChannelUpgrade, for request: Request,
                                 observer: (any RequestObserver)?, started: NIODeadline,
                                 context: ChannelHandlerContext) {
        cancelTimers()
        _ = server.writer.write(response, isHead: false, keepAlive: true, http10Client: false, date: server.clock.httpDate(),
                                context: context, promise: nil)
        logAccess(request, status: 101, bodyBytes: 0, observer: observer, started: started)
        do {
            try upgrade.install(on: context.channel)
        } catch {
            server.logger.warning("protocol switch failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        let leftover = buffer
        buffer = ByteBuffer()
        if leftover.readableBytes > 0 { context.fireChannelRead(NIOAny(leftover)) }
        // A read held for backpressure is passed on first: once removed, this context reaches nothing.
        if readRequested { context.read() }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Answers a protocol error, then closes: nothing after it on this connection is parsed.
    private func fail(_ error: ProtocolError, context: ChannelHandlerContext) {
        cancelTimers()
        failed = true
        closing = true
        keepAlive = false
        // Forget the broken message entirely: nothing after it on this connection is parsed.
        buffer.clear()
        parser = RequestParser(limits: server.parserLimits)
        let head = pending?.head
        let accept = head.flatMap { HeaderFields($0.headers)["Accept"] }
        let response = server.errorResponse(error, accept: accept)
        server.logger.debug("bad request", metadata: ["status": "\(error.status)", "reason": "\(error.reason)"])
        let request = Request(method: head?.method ?? "-", target: head?.target ?? "-", path: "/", query: nil,
                              versionMinor: head?.versionMinor ?? 1, headers: HeaderFields(head?.headers ?? []),
                              host: "", clientAddress: peer?.ipAddress ?? "-")
        pending = nil
        send(response, for: request, observer: server.observer, started: .now(), context: context)
    }

    // MARK: - Writing

    /// `observer`: the metrics of the table that answered (a reload may have swapped tables since).
    private func send(_ response: Response, for request: Request, observer: (any RequestObserver)?, started: NIODeadline,
                      context: ChannelHandlerContext) {
        let streamed: (any BodyStream)? = if case .stream(let body) = response.body, !request.isHead,
                                             response.status >= 200, response.status != 204, response.status != 304 { body } else { nil }
        if streamed != nil && request.versionMinor == 0 {
            // An HTTP/1.0 client learns where a body of unknown length ends only from the close.
            keepAlive = false
            closing = true
        }
        responsesInFlight += 1
        let staysOpen = keepAlive && !closing
        let inMemory = switch response.body { case .empty, .bytes: true; default: false }
        // A kept-alive connection needs no word when an in-memory response leaves: it is one buffer
        // handed to the socket in order, and a failed write closes the channel anyway. That saves a
        // promise and a callback per request. Closing, files and streams wait for the write.
        let promise = staysOpen && inMemory ? nil : context.eventLoop.makePromise(of: Void.self)
        let outcome = server.writer.write(response, isHead: request.isHead, keepAlive: staysOpen,
                                          http10Client: request.versionMinor == 0, date: server.clock.httpDate(),
                                          context: context, promise: promise)
        if let promise {
            promise.futureResult.assumeIsolated().whenComplete { [self] result in
                if case .failure = result { context.close(promise: nil); return }
                if streamed == nil { responseDone(context: context) }
            }
        }
        if let streamed {
            let sink = ChannelBodySink(context: context, chunked: request.versionMinor >= 1) { [self] closeConnection in
                stream = nil
                if closeConnection { closing = true }
                responseDone(context: context)
                // Requests pipelined behind the stream were held back (see `process`): their turn now.
                if !closing { process(context: context) }
            }
            stream = sink
            streamed.start(sink)
        }
        logAccess(request, status: response.status, bodyBytes: outcome.bodyBytes, observer: observer, started: started)
        if promise == nil { responseDone(context: context) }
    }

    /// A response is completely handed to the socket: close, linger, or wait for the next request.
    private func responseDone(context: ChannelHandlerContext) {
        responsesInFlight -= 1
        guard responsesInFlight == 0, pending == nil, parser.isIdle, !awaitingResponse else { return }
        if failed {
            lingerAndClose(context: context)
        } else if closing {
            context.close(promise: nil)
        } else if waitDeadline == nil {
            // The idle clock starts once the response is out, so a long download is never cut by it.
            let partialHead = buffer.readableBytes > 0
            scheduleWaitTimer(context: context, seconds: partialHead ? server.server.timeouts.header : server.server.timeouts.idle,
                              answer408: partialHead)
        }
    }

    /// Access log and metrics observer: both see every answered request as the chain left it,
    /// with the same duration.
    /// Durations are wall-clock time (the timers below use the loop's clock, for their tests).
    private func logAccess(_ request: Request, status: Int, bodyBytes: Int, observer: (any RequestObserver)?, started: NIODeadline) {
        guard server.accessLog != nil || observer != nil else { return }
        let duration = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        observer?.requestAnswered(ObservedRequest(
            host: request.context.hostName, route: request.context.routePattern, method: request.method, status: status,
            bodyBytes: bodyBytes, durationSeconds: duration))
        guard let accessLog = server.accessLog else { return }
        accessLog.record(AccessRecord(
            clientAddress: request.clientAddress, method: request.method, target: request.target,
            versionMinor: request.versionMinor, status: status, bodyBytes: bodyBytes,
            host: request.context.forwardedHost ?? request.host, referer: request.headers["Referer"],
            userAgent: request.headers["User-Agent"], durationSeconds: duration, requestID: request.context.requestID,
            user: request.context.user, scheme: request.context.scheme.rawValue))
    }

    /// Lingering close (as nginx does): send FIN, then read and discard what the client still
    /// sends for a moment. Closing with unread input would make the kernel answer with RST, which
    /// can destroy the error response before the client has read it.
    private func lingerAndClose(context: ChannelHandlerContext) {
        context.close(mode: .output, promise: nil)
        _ = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
            context.close(promise: nil)
        }
    }

    // MARK: - Backpressure and the write timeout

    func read(context: ChannelHandlerContext) {
        if readHeld || inputPaused {
            readRequested = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimer?.cancel()
            writeTimer = nil
            readHeld = false
            if readRequested {
                readRequested = false
                context.read()
            }
            process(context: context)
        } else {
            readHeld = true
            let seconds = server.server.timeouts.write
            if seconds > 0 {
                // Slow-read defence: a peer that takes nothing for this long is dropped.
                writeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .fromSeconds(seconds)) {
                    context.close(promise: nil)
                }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Timers

    private var waitTimerIsIdle: Bool { waitDeadline != nil && !waitAnswers408 }

    /// Waiting for a request head: idle keep-alive (close quietly) or a partial head (408).
    private func scheduleWaitTimer(context: ChannelHandlerContext, seconds: Double, answer408: Bool) {
        guard seconds > 0 else {
            cancelWaitTimer()
            return
        }
        // The loop's clock, not the wall clock: the same on a real loop, and what
        // `EmbeddedEventLoop.advanceTime` moves in the timer tests.
        let deadline = context.eventLoop.now + .fromSeconds(seconds)
        waitDeadline = deadline
        waitAnswers408 = answer408
        if let firesAt = waitTaskFiresAt, firesAt <= deadline { return }
        waitTask?.cancel()
        armWaitTask(context: context, at: deadline)
    }

    private func armWaitTask(context: ChannelHandlerContext, at deadline: NIODeadline) {
        waitTaskFiresAt = deadline
        waitTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            waitTask = nil
            waitTaskFiresAt = nil
            guard let target = waitDeadline else { return }
            if target > context.eventLoop.now {
                armWaitTask(context: context, at: target)
                return
            }
            waitDeadline = nil
            if waitAnswers408 || buffer.readableBytes > 0 {
                fail(ProtocolError(status: 408, reason: "request head not received in time"), context: context)
            } else {
                context.close(promise: nil)
            }
        }
    }

    private func scheduleBodyTimer(context: ChannelHandlerContext) {
        bodyTimer?.cancel()
        let seconds = server.server.timeouts.body
        guard seconds > 0 else { return }
        bodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .fromSeconds(seconds)) { [self] in
            bodyTimer = nil
            fail(ProtocolError(status: 408, reason: "request body not received in time"), context: context)
        }
    }

    /// Disarms without touching the scheduled task (it finds no deadline when it fires).
    private func cancelWaitTimer() {
        waitDeadline = nil
        waitAnswers408 = false
    }

    private func cancelTimers() {
        cancelWaitTimer()
        waitTask?.cancel()
        waitTask = nil
        waitTaskFiresAt = nil
        bodyTimer?.cancel()
        bodyTimer = nil
        writeTimer?.cancel()
        writeTimer = nil
        delayTimer?.cancel()
        delayTimer = nil
    }
}

extension TimeAmount {
    static func fromSeconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1_000_000_000)) }
}
