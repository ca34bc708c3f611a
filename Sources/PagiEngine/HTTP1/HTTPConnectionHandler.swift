import NIOCore
import NIOHTTP2
import NIOPosix
import PagiConfig
import PagiCore

/// One HTTP/1.1 connection (docs/architecture.md): reads requests off the byte stream, has the
/// routing table answer them in order (pipelining), writes the answers, and enforces the head,
/// body and idle timeouts of docs/configuration.md §4. The rules live in plain types this handler
/// carries out: `RequestParser` (bytes → heads and bodies), `RequestIntake` (→ `Request`),
/// `ConnectionState` (keep-alive, pipelining, what follows an answer), `HeadWait` (the wait for
/// the next head); `SlowReaderGuard`, behind it, stops reading while the peer does not read.
/// After a protocol error it answers, closes, and reads nothing more, so a smuggled second
/// request is never seen.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let server: ServerContext
    private var parser: RequestParser
    private var buffer = ByteBuffer()
    private var intake = RequestIntake()
    private var state = ConnectionState()
    private var headWait = HeadWait()
    /// The timer that enforces `headWait`: a scheduled callback, not a `Scheduled` task, since every
    /// idle connection holds one (no promise or closures: 3.53 → 3.33 KiB per idle connection,
    /// docs/performance.md, *Memory per idle connection*).
    private var headWaitTimer: NIOScheduledCallback?
    private var bodyTimer: Scheduled<Void>?
    /// Work an answer given later scheduled (`Exchange.schedule`), cancelled when the connection closes.
    private var exchangeTimers: [Scheduled<Void>] = []
    /// The streamed body being written, if any, and whether it has no end of its own (SSE).
    private var stream: ChannelBodySink?
    private var streamIsOpenEnded = false
    /// `process` is running: a streamed body's handler that resumes from inside it is not re-entered.
    private var processing = false
    /// A read the pipeline asked for while input is paused (see `inputPaused`).
    private var readRequested = false
    /// Looked up once: `remoteAddress` costs a getpeername(2) per call.
    private var peerIP = "-"
    /// The peer takes what we write (the channel is writable); kept from the writability events
    /// rather than asked of the channel for every request.
    private var peerReading = true

    /// On a TLS connection (docs/tls.md): files are read in chunks off the event loop, since
    /// sendfile(2) cannot encrypt; nil on cleartext ones.
    private let fileReader: NonBlockingFileIO?
    /// The verified client certificate's subject, read when the first request arrives (the
    /// handshake is over by then): `.some(nil)` once read on a connection without one.
    private var clientSubject: String??

    /// What the TLS handshake chose; nil on cleartext connections.
    private let tls: TLSSession?
    /// Cleartext HTTP/2 by prior knowledge (h2c) is accepted: a connection that opens with the
    /// HTTP/2 preface is handed to `HTTP2Connection` (docs/http2.md).
    private let acceptsHTTP2Preface: Bool

    /// `tls`: the connection is TLS — its requests are `https`, its files are read rather than sent.
    init(server: ServerContext, tls: TLSSession? = nil, acceptsHTTP2Preface: Bool = false) {
        self.server = server
        self.tls = tls
        self.acceptsHTTP2Preface = acceptsHTTP2Preface
        self.fileReader = tls == nil ? nil : Self.encryptedFileReader
        self.parser = RequestParser(limits: server.parserLimits)
    }

    private var requestInProgress: Bool { intake.inProgress || !parser.isIdle }

    // MARK: - Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        peerIP = context.remoteAddress?.ipAddress ?? "-"
        // The first request gets the header timeout from the moment the connection is open.
        waitForHead(context: context, seconds: server.server.timeouts.header, answer408: false)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        _ = intake.abandon()
        stream?.connectionClosed()
        stream = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // An open-ended stream (SSE) would never drain by itself: end it now. Others finish.
        if streamIsOpenEnded { stream?.finish() }
        switch state.quiesce(requestInProgress: requestInProgress) {
        case .closeNow: context.close(promise: nil)
        case .drain: break
        case .awaitFirstRequest: waitForHead(context: context, seconds: Self.firstRequestGrace, answer408: false)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Socket errors (reset by peer…) end this connection only.
        server.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state.wantsInput(requestInProgress: requestInProgress) else { return }
        var incoming = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            // The common case takes the read buffer as it is: no copy.
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        if acceptsHTTP2Preface && !state.servedAny {
            switch HTTP2Preface.match(buffer) {
            case .yes:
                switchToHTTP2(context: context)
                return
            case .notYet:
                return
            case .no:
                break
            }
        }
        process(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Another protocol took the connection over (HTTP/2 after ALPN or its preface, a WebSocket).
        cancelTimers()
    }

    /// The connection began with the HTTP/2 preface, or its first request asked for `Upgrade: h2c`
    /// (`upgrading`: that request as stream 1, answered after a `101`): HTTP/2 handlers take it
    /// over, with what was read.
    private func switchToHTTP2(context: ChannelHandlerContext, upgrading streamOne: ByteBuffer? = nil) {
        cancelTimers()
        do {
            if let streamOne {
                var switching = context.channel.allocator.buffer(capacity: 80)
                switching.writeStaticString(HTTP2Upgrade.switching)
                context.writeAndFlush(NIOAny(IOData.byteBuffer(switching)), promise: nil)
                try HTTP2Connection.configure(context.channel, server: server, tls: tls)
                let pipeline = context.pipeline.syncOperations
                try pipeline.addHandler(UpgradedRequestReplay(request: streamOne), position: .before(pipeline.handler(type: NIOHTTP2Handler.self)))
            } else {
                try HTTP2Connection.configure(context.channel, server: server, tls: tls)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let leftover = buffer
        buffer = ByteBuffer()
        let pipeline = context.pipeline.syncOperations
        if let guardHandler = try? pipeline.handler(type: SlowReaderGuard.self) {
            pipeline.removeHandler(guardHandler, promise: nil)
        }
        context.fireChannelRead(NIOAny(leftover))
        if readRequested { context.read() }
        pipeline.removeHandler(context: context, promise: nil)
    }

    /// Nothing is buffered without bound while a response is still being produced (given later
    /// or streaming): past one request head's worth of early input, reading stops, so a client
    /// that keeps sending meets TCP backpressure instead of growing our memory.
    private var inputPaused: Bool {
        !state.mayParse && buffer.readableBytes >= server.parserLimits.headerBytes
    }

    func read(context: ChannelHandlerContext) {
        if inputPaused {
            readRequested = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        peerReading = context.channel.isWritable
        // Pipelined requests wait while the peer does not read (`SlowReaderGuard` holds the reads):
        // their turn now.
        if peerReading { process(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Not passed on: nothing behind this handler needs it (one pipeline step less per request).
    func channelReadComplete(context: ChannelHandlerContext) {}

    /// Parses what was read while it may: the next requests while answers are not pending (and
    /// the peer reads them), or a streamed body while its handler takes it.
    private func process(context: ChannelHandlerContext) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while intake.streamed.map(\.isReading) ?? (state.mayParse && peerReading) {
            if !state.wantsInput(requestInProgress: requestInProgress) { return }
            let wasIdle = !requestInProgress
            let event: ParseEvent?
            do {
                event = try parser.next(&buffer)
            } catch {
                fail(error, context: context)
                return
            }
            guard let event else {
                if wasIdle && buffer.readableBytes > 0 && headWait.isIdleWait {
                    // Bytes of a new request arrived: the head must now complete within `timeouts.header`.
                    waitForHead(context: context, seconds: server.server.timeouts.header, answer408: true)
                }
                break
            }
            switch event {
            case .head(let head):
                headWait.disarm()
                if acceptsHTTP2Preface && !state.servedAny && HTTP2Upgrade.isRequested(head),
                   let streamOne = HTTP2Upgrade.streamOne(head, allocator: context.channel.allocator) {
                    switchToHTTP2(context: context, upgrading: streamOne)
                    return
                }
                startRequest(head, context: context)
            case .body(var chunk):
                do {
                    try intake.append(&chunk)
                } catch {
                    fail(error, context: context)
                    return
                }
                scheduleBodyTimer(context: context)
            case .end:
                bodyTimer?.cancel()
                bodyTimer = nil
                finishRequest(context: context)
            }
        }
        if let streamed = intake.streamed, !streamed.isReading {
            // Not read because its handler cannot take more: not the client's delay.
            bodyTimer?.cancel()
            bodyTimer = nil
        }
        if buffer.readableBytes == 0 {
            // Idle connections hold no buffer memory (thousands of keep-alive clients add up).
            buffer = Self.noBytes
        } else {
            buffer.discardReadBytes()
        }
        if readRequested && !inputPaused {
            readRequested = false
            context.read()
        }
    }

    private static let noBytes = ByteBuffer()
    /// NIO's shared thread pool, started when the first TLS connection sends a file.
    private static let encryptedFileReader = NonBlockingFileIO(threadPool: .singleton)
    /// How long a connection accepted just before a graceful shutdown waits for its first request.
    private static let firstRequestGrace = 1.0

    private func startRequest(_ head: RequestHead, context: ChannelHandlerContext) {
        state.requestStarted(persistent: ConnectionState.persists(versionMinor: head.versionMinor, headers: head.headers))
        do throws(ProtocolError) {
            if tls != nil && clientSubject == nil {
                clientSubject = .some(ClientCertificate.subject(in: context.pipeline.syncOperations))
            }
            try intake.start(head, table: server.tables.table, peerIP: peerIP, trustedProxies: server.trustedProxies,
                             encrypted: fileReader != nil, clientSubject: clientSubject ?? nil)
            if let tls, let host = intake.host, tls.misdirects(host: host) { throw TLSSession.misdirected }
        } catch {
            fail(error, context: context)
            return
        }
        guard head.framing != .none else { return }
        if head.expectsContinue {
            var interim = context.channel.allocator.buffer(capacity: 25)
            interim.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
            context.writeAndFlush(NIOAny(IOData.byteBuffer(interim)), promise: nil)
        }
        scheduleBodyTimer(context: context)
        if intake.streamsBody { answerBeforeBody(head, context: context) }
    }

    /// The route takes the body as it arrives (docs/proxy.md, "Streamed uploads"): the request is
    /// answered now, and its body parsed while the handler reads it.
    private func answerBeforeBody(_ head: RequestHead, context: ChannelHandlerContext) {
        let length: Int? = if case .length(let length) = head.framing { length } else { nil }
        let body = StreamedRequestBody(declaredLength: length) { [self] in
            scheduleBodyTimer(context: context)
            process(context: context)
        }
        guard let accepted = intake.handOver(body) else { return }
        answer(accepted, context: context)
    }

    /// The request is complete; one whose body was streamed is answered already (`finish` is nil).
    private func finishRequest(context: ChannelHandlerContext) {
        guard let accepted = intake.finish() else { return }
        answer(accepted, context: context)
    }

    /// `consuming`: a copy of the request would retain every string in it.
    private func answer(_ accepted: consuming RequestIntake.Accepted, context: ChannelHandlerContext) {
        state.requestFinished()
        server.requestBudget?.spend()
        let response = accepted.table.respond(to: &accepted.request)
        deliver(response, for: accepted.request, table: accepted.table, started: accepted.started, context: context)
    }

    // MARK: - Answering

    /// Sends a response, or waits for it when it comes later (`Response.later`).
    private func deliver(_ response: Response, for request: Request, table: RoutingTable, started: NIODeadline,
                         context: ChannelHandlerContext) {
        if let deferred = response.deferred {
            state.awaitingResponse = true
            deferred.start(exchange(for: request, table: table, started: started, context: context))
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

    private func exchange(for request: Request, table: RoutingTable, started: NIODeadline,
                          context: ChannelHandlerContext) -> LoopExchange {
        let loop = context.eventLoop
        let finish = NIOLoopBound({ [self] (outcome: LoopExchange.Outcome) in
            exchangeEnded(outcome, for: request, table: table, started: started, context: context)
        }, eventLoop: loop)
        let timer = NIOLoopBound({ [self] (delay: TimeAmount, work: @escaping @Sendable () -> Void) in
            guard context.channel.isActive else { return }
            exchangeTimers.append(loop.assumeIsolated().scheduleTask(in: delay, work))
        }, eventLoop: loop)
        return LoopExchange(loop: loop, finish: finish, timer: timer)
    }

    private func exchangeEnded(_ outcome: LoopExchange.Outcome, for request: Request, table: RoutingTable,
                               started: NIODeadline, context: ChannelHandlerContext) {
        // After a protocol error in a streamed body, that error was the answer.
        guard context.channel.isActive, !state.failed else { return }
        state.awaitingResponse = false
        cancelExchangeTimers()
        switch outcome {
        case .response(let response, let continued):
            deliver(response, for: continued ?? request, table: table, started: started, context: context)
            if state.mayParse { process(context: context) }
        case .fault(let fault):
            cancelTimers()
            state.close()
            FaultInjection.perform(fault, context: context)
        case .switchProtocols(let response, let upgrade):
            guard let upgrade = upgrade as? any ChannelUpgrade else {
                server.logger.error("protocol switch of a kind HTTP/1.1 cannot carry out", metadata: ["kind": "\(type(of: upgrade))"])
                context.close(promise: nil)
                return
            }
            switchProtocols(response, upgrade: upgrade, for: request, observer: table.observer, started: started, context: context)
        }
    }

    /// Writes the head of the switch (101), lets the new protocol install its handlers, gives them
    /// what was already read past the request, and leaves the pipeline with `SlowReaderGuard`.
    private func switchProtocols(_ response: Response, upgrade: any ChannelUpgrade, for request: Request,
                                 observer: (any RequestObserver)?, started: NIODeadline,
                                 context: ChannelHandlerContext) {
        cancelTimers()
        _ = server.writer.write(response, isHead: false, keepAlive: true, http10Client: false, date: server.clock.httpDate(),
                                fileReader: nil, context: context, promise: nil)
        server.recordAnswer(request, status: response.status, bodyBytes: 0, observer: observer, started: started)
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
        // A read held back is passed on first: once removed, this context reaches nothing.
        if readRequested { context.read() }
        let pipeline = context.pipeline.syncOperations
        if let guardHandler = try? pipeline.handler(type: SlowReaderGuard.self) {
            pipeline.removeHandler(guardHandler, promise: nil)
        }
        pipeline.removeHandler(context: context, promise: nil)
        // The new protocol missed the shutdown's signal (it came before the switch): repeat it.
        if state.isQuiesced { context.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// Answers a protocol error, then closes: nothing after it on this connection is parsed.
    private func fail(_ error: ProtocolError, context: ChannelHandlerContext) {
        cancelTimers()
        if intake.streamed != nil {
            if state.responsesInFlight > 0 || state.streaming {
                // The handler's answer has begun: an error answer cannot follow it.
                _ = intake.abandon()
                stream?.close()
                state.fail()
                context.close(promise: nil)
                return
            }
            // The handler's answer, still to come, is dropped (`exchangeEnded`): this one replaces it.
            state.awaitingResponse = false
        }
        state.fail()
        // Forget the broken message entirely: nothing after it on this connection is parsed.
        buffer.clear()
        parser = RequestParser(limits: server.parserLimits)
        let head = intake.abandon()
        let headers = HeaderFields(head?.headers ?? [])
        let response = server.errorResponse(error, accept: headers["Accept"])
        server.logger.debug("bad request", metadata: ["status": "\(error.status)", "reason": "\(error.reason)"])
        let request = Request(method: head?.method ?? "-", target: head?.target ?? "-", path: "/", query: nil,
                              versionMinor: head?.versionMinor ?? 1, headers: headers, host: "", clientAddress: peerIP)
        send(response, for: request, observer: server.observer, started: .now(), context: context)
    }

    /// `observer`: the metrics of the table that answered (a reload may have swapped tables since).
    private func send(_ response: Response, for request: Request, observer: (any RequestObserver)?, started: NIODeadline,
                      context: ChannelHandlerContext) {
        let streamed: (any BodyStream)? = if case .stream(let body) = response.body, !request.isHead,
                                             response.status >= 200, response.status != 204, response.status != 304 { body } else { nil }
        if streamed != nil && streamed?.length == nil && request.versionMinor == 0 {
            // An HTTP/1.0 client learns where a body of unknown length ends only from the close.
            state.close()
        }
        state.responseSent()
        let staysOpen = state.staysOpen
        let inMemory = switch response.body { case .empty, .bytes: true; default: false }
        // A kept-alive connection needs no word when an in-memory response leaves: it is one buffer
        // handed to the socket in order, and a failed write closes the channel anyway. That saves a
        // promise and a callback per request. Closing, files and streams wait for the write.
        let promise = staysOpen && inMemory ? nil : context.eventLoop.makePromise(of: Void.self)
        let outcome = server.writer.write(response, isHead: request.isHead, keepAlive: staysOpen,
                                          http10Client: request.versionMinor == 0, date: server.clock.httpDate(),
                                          fileReader: fileReader, context: context, promise: promise)
        // The rest of a file is written later: a pipelined answer waits, or it would land inside it.
        if outcome.bodyFollows { state.streaming = true }
        if let promise {
            promise.futureResult.assumeIsolated().whenComplete { [self] result in
                if case .failure = result { context.close(promise: nil); return }
                guard streamed == nil else { return }
                responseDone(context: context)
                if outcome.bodyFollows {
                    state.streaming = false
                    if state.mayParse { process(context: context) }
                }
            }
        }
        if let streamed {
            let framing: ChannelBodySink.Framing = if let length = streamed.length { .length(length) }
                else if request.versionMinor >= 1 { .chunked } else { .untilClose }
            let sink = ChannelBodySink(context: context, framing: framing) { [self] closeConnection in
                stream = nil
                state.streaming = false
                if closeConnection { state.close() }
                responseDone(context: context)
                if state.mayParse { process(context: context) }
            }
            stream = sink
            streamIsOpenEnded = streamed.isOpenEnded
            state.streaming = true
            streamed.start(sink)
            // The first request of a connection accepted just before a shutdown: an open-ended
            // stream would miss the shutdown's signal, so it ends now, cleanly.
            if streamIsOpenEnded && state.isQuiesced { sink.finish() }
        }
        server.recordAnswer(request, status: response.status, bodyBytes: outcome.bodyBytes, observer: observer, started: started)
        if promise == nil { responseDone(context: context) }
    }

    /// A response is completely handed to the socket: close, linger, or wait for the next request.
    private func responseDone(context: ChannelHandlerContext) {
        let next = state.responseDone(requestInProgress: requestInProgress)
        if intake.streamed != nil && state.responsesInFlight == 0 && !state.streaming {
            // Answered in full before the client sent all of its body, which nobody reads now: close,
            // after a linger so the client gets the answer (nginx closes too, past a small body).
            _ = intake.abandon()
            parser = RequestParser(limits: server.parserLimits)
            buffer.clear()
            state.fail()
            lingerAndClose(context: context)
            return
        }
        switch next {
        case .nothing:
            break
        case .lingerAndClose:
            lingerAndClose(context: context)
        case .close:
            context.close(promise: nil)
        case .awaitNextRequest:
            guard headWait.deadline == nil else { break }
            // The idle clock starts once the response is out, so a long download is never cut by it.
            let partialHead = buffer.readableBytes > 0
            waitForHead(context: context, seconds: partialHead ? server.server.timeouts.header : server.server.timeouts.idle,
                        answer408: partialHead)
        }
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

    // MARK: - Timers

    /// Waiting for a request head: idle keep-alive (close quietly) or a partial head (408).
    /// The loop's clock, not the wall clock: the same on a real loop, and what
    /// `EmbeddedEventLoop.advanceTime` moves in the timer tests.
    private func waitForHead(context: ChannelHandlerContext, seconds: Double, answer408: Bool) {
        guard seconds > 0 else {
            headWait.disarm()
            return
        }
        let deadline = context.eventLoop.now + .fromSeconds(seconds)
        guard headWait.arm(at: deadline, answer408: answer408) else { return }
        headWaitTimer?.cancel()
        scheduleHeadWaitTimer(context: context, at: deadline)
    }

    private func scheduleHeadWaitTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        // Throws only when the loop is shutting down, which closes the connection anyway.
        let timer = HeadWaitTimer(connection: self, context: context)
        headWaitTimer = try? context.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: timer)
    }

    /// What `headWaitTimer` calls (its handler holds the connection and its context, nothing else).
    private struct HeadWaitTimer: NIOScheduledCallbackHandler {
        let connection: HTTPConnectionHandler
        let context: ChannelHandlerContext

        func handleScheduledCallback(eventLoop: some EventLoop) { connection.headWaitTimerFired(context: context) }
    }

    private func headWaitTimerFired(context: ChannelHandlerContext) {
        headWaitTimer = nil
        switch headWait.fired(now: context.eventLoop.now) {
        case .disarmed:
            break
        case .early(let later):
            scheduleHeadWaitTimer(context: context, at: later)
        case .expired(let answer408):
            if answer408 || buffer.readableBytes > 0 {
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

    private func cancelTimers() {
        headWait.taskCancelled()
        headWaitTimer?.cancel()
        headWaitTimer = nil
        bodyTimer?.cancel()
        bodyTimer = nil
        cancelExchangeTimers()
    }

    private func cancelExchangeTimers() {
        guard !exchangeTimers.isEmpty else { return }
        for timer in exchangeTimers { timer.cancel() }
        exchangeTimers = []
    }
}

extension TimeAmount {
    static func fromSeconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1_000_000_000)) }
}
