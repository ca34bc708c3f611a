import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import PagiConfig
import PagiCore

/// One HTTP/2 stream (docs/http2.md): its HEADERS and DATA frames become a `Request` for the
/// routing table — the same handlers and middleware as HTTP/1.1 — and the `Response` goes back
/// as HEADERS and DATA frames. Files are read in chunks (`FileChunks`), streamed bodies (SSE)
/// leave as one DATA frame per write, answers given later go through a `LoopExchange`, and a fault
/// on purpose resets the stream (RST_STREAM) instead of a connection. NIOHTTP2 below checks the
/// frames, flow control, SETTINGS and the header blocks (pseudo-headers, forbidden fields).
final class HTTP2StreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let server: ServerContext
    private let connection: HTTP2Connection
    private var accepted: RequestIntake.Accepted?
    private var body: [UInt8] = []
    private var sink: ChannelBodySink?
    /// The streamed body has no end of its own (SSE): a graceful shutdown ends it.
    private var streamIsOpenEnded = false
    private var timers: [Scheduled<Void>] = []
    private var answered = false
    /// `timeouts.body`: a stream whose request does not end in time is answered 408 (a slow
    /// client holding streams open is the HTTP/2 form of slowloris). For a streamed body: no
    /// progress in time, while its handler takes what comes.
    private var requestTimer: Scheduled<Void>?
    /// The response's HEADERS went out (or an error answer did): nothing else is sent on the stream.
    private var responseBegun = false
    /// A request body handed to its handler as it arrives (docs/proxy.md, *Streamed uploads*), the
    /// DATA read but not yet taken, whether the last has come, and the bytes so far (limits).
    private var streamedBody: StreamedRequestBody?
    private var heldData: [ByteBuffer] = []
    private var streamedBodyComplete = false
    private var streamedBytes = 0
    private var flowing = false
    /// The stream channel reads by itself (`autoRead`), as it does until a streamed body pauses it.
    private var streamReading = true

    /// The server's `limits.body_bytes`, or the route's smaller `body_limit`.
    private var bodyLimit: Int {
        let server = server.parserLimits.bodyBytes > 0 ? server.parserLimits.bodyBytes : Int.max
        return min(server, accepted?.bodyLimit ?? Int.max)
    }

    init(server: ServerContext, connection: HTTP2Connection) {
        self.server = server
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if streamedBody != nil {
            takeStreamedBody(unwrapInboundIn(data), context: context)
            return
        }
        guard !answered else { return }
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if accepted == nil {
                start(headers.headers, endStream: headers.endStream, context: context)
                if !headers.endStream, !answered { armRequestTimer(context: context) }
            }
            if headers.endStream { finish(context: context) }
        case .data(let data):
            guard case .byteBuffer(var bytes) = data.data else { return }
            if body.count + bytes.readableBytes > bodyLimit {
                fail(ProtocolError(status: 413, reason: "request body too large"), context: context)
                return
            }
            if let chunk = bytes.readBytes(length: bytes.readableBytes) { body += chunk }
            if data.endStream { finish(context: context) }
        default:
            break
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection.streamOpened()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.streamEnded()
        for timer in timers { timer.cancel() }
        timers = []
        requestTimer?.cancel()
        streamedBody?.fail()
        streamedBody = nil
        sink?.connectionClosed()
        sink = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A graceful shutdown: an open-ended stream (SSE) ends now; others finish.
        if event is ChannelShouldQuiesceEvent, let sink, streamIsOpenEnded { sink.finish() }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - The request

    /// Pseudo-headers to the request line, `:authority` to `Host` (RFC 9113 §8.3.1).
    private func start(_ fields: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        var method = "", path = "", authority: String?, connectProtocol: String?
        var headers: [(name: String, value: String)] = []
        var hasHost = false
        for (name, value, _) in fields {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case ":protocol": connectProtocol = value
            case ":scheme": break
            default:
                if name == "host" { hasHost = true }
                headers.append((name, value))
            }
        }
        if !hasHost, let authority { headers.append(("host", authority)) }
        // RFC 8441: a WebSocket is asked for by CONNECT with `:protocol: websocket`, routed as the GET
        // an HTTP/1.1 client would have sent; another protocol is not served.
        let extendedConnect = method == "CONNECT" && connectProtocol != nil
        if extendedConnect {
            guard connectProtocol?.lowercased() == "websocket" else {
                fail(ProtocolError(status: 501, reason: "only websocket is served over extended CONNECT"), context: context)
                return
            }
            method = "GET"
        }
        // Whether a body follows, and its length when `content-length` says (NIOHTTP2 holds the DATA to it).
        let declared = fields.first(name: "content-length").flatMap(Int.init)
        let framing: BodyFraming = endStream || extendedConnect ? .none : declared.map { .length($0) } ?? .chunked
        let head = RequestHead(method: method, target: path, versionMinor: 1, headers: headers, framing: framing, expectsContinue: false)
        var intake = RequestIntake()
        do throws(ProtocolError) {
            // The same limits as an HTTP/1.1 head (`limits.uri_bytes`, `limits.headers`); the header
            // bytes are bounded by SETTINGS_MAX_HEADER_LIST_SIZE already.
            if path.utf8.count > server.parserLimits.uriBytes { throw ProtocolError(status: 414, reason: "URI too long") }
            if headers.count > server.parserLimits.headerCount { throw ProtocolError(status: 431, reason: "too many header fields") }
            try intake.start(head, table: server.tables.table, peerIP: connection.peerIP, trustedProxies: server.trustedProxies,
                             encrypted: connection.tls != nil, clientSubject: connection.clientSubject)
            if let tls = connection.tls, let host = intake.host, tls.misdirects(host: host) { throw TLSSession.misdirected }
        } catch {
            fail(error, head: head, context: context)
            return
        }
        accepted = intake.takeAccepted()
        accepted?.request.context.isHTTP2 = true
        if extendedConnect {
            // Its stream stays open for the WebSocket's frames: answered now, without a body.
            accepted?.request.context.isExtendedConnect = true
            finish(context: context)
        } else if intake.streamsBody {
            // Answered now; its DATA goes to the handler as it arrives.
            let body = StreamedRequestBody(declaredLength: declared) { [self] in flowStreamedBody(context: context) }
            streamedBody = body
            accepted?.request.context.bodySource = body
            finish(context: context)
            flowStreamedBody(context: context)
        }
    }

    /// DATA (or trailers) of a streamed body: held until its handler takes them.
    private func takeStreamedBody(_ frame: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        switch frame {
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data, bytes.readableBytes > 0 {
                streamedBytes += bytes.readableBytes
                if streamedBytes > bodyLimit {
                    abandonStreamedBody(ProtocolError(status: 413, reason: "request body too large"), context: context)
                    return
                }
                heldData.append(bytes)
            }
            if data.endStream { streamedBodyComplete = true }
        case .headers(let trailers):
            if trailers.endStream { streamedBodyComplete = true }
        default:
            return
        }
        flowStreamedBody(context: context)
    }

    /// Hands what was held to the handler while it takes it; the stream is read only while nothing
    /// is held, so HTTP/2 flow control (no WINDOW_UPDATE for what is not read) holds the client back.
    /// Turning reading on or asking for a read may deliver frames at once, from inside this
    /// function: hence the loop.
    private func flowStreamedBody(context: ChannelHandlerContext) {
        guard let body = streamedBody, !flowing else { return }
        flowing = true
        defer { flowing = false }
        repeat {
            while body.isReading, !heldData.isEmpty { body.deliver(heldData.removeFirst()) }
            if heldData.isEmpty && streamedBodyComplete {
                streamedBody = nil
                requestTimer?.cancel()
                body.end()
                return
            }
            let reading = body.isReading && heldData.isEmpty
            requestTimer?.cancel()
            if reading != streamReading {
                streamReading = reading
                context.channel.setOption(ChannelOptions.autoRead, value: reading).whenComplete { _ in }
            }
            if reading {
                armRequestTimer(context: context)
                context.read()
            }
        } while streamedBody === body && body.isReading && !heldData.isEmpty
    }

    /// A streamed body broke off (over its limit, too slow): the handler is told, and the client
    /// answered — or, when the handler's answer has begun, the stream reset.
    private func abandonStreamedBody(_ error: ProtocolError, context: ChannelHandlerContext) {
        streamedBody?.fail()
        streamedBody = nil
        heldData = []
        guard !responseBegun else {
            context.close(promise: nil)
            return
        }
        fail(error, context: context)
    }

    private func armRequestTimer(context: ChannelHandlerContext) {
        let seconds = server.server.timeouts.body
        guard seconds > 0 else { return }
        requestTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [self] in
            let late = ProtocolError(status: 408, reason: "request body not received in time")
            if streamedBody != nil { return abandonStreamedBody(late, context: context) }
            guard !answered else { return }
            fail(late, context: context)
        }
    }

    private func finish(context: ChannelHandlerContext) {
        guard var accepted, !answered else { return }
        answered = true
        requestTimer?.cancel()
        accepted.request.body = body
        body = []
        server.requestBudget?.spend()
        let response = accepted.table.respond(to: &accepted.request)
        deliver(response, for: accepted.request, table: accepted.table, started: accepted.started, context: context)
    }

    /// Answers a request that cannot be served (with a stand-in for the access log when it was
    /// refused before it became a `Request`); the stream ends with the answer.
    private func fail(_ error: ProtocolError, head: RequestHead? = nil, context: ChannelHandlerContext) {
        answered = true
        requestTimer?.cancel()
        let request = accepted?.request ?? Self.placeholder(head, peerIP: connection.peerIP)
        let response = server.errorResponse(error, accept: request.headers["Accept"])
        send(response, for: request, observer: server.observer, started: accepted?.started ?? .now(), context: context)
    }

    private static func placeholder(_ head: RequestHead?, peerIP: String) -> Request {
        Request(method: head?.method ?? "-", target: head?.target ?? "-", path: "/", query: nil, versionMinor: 1,
                headers: HeaderFields(head?.headers ?? []), host: "", clientAddress: peerIP)
    }

    // MARK: - The answer

    private func deliver(_ response: Response, for request: Request, table: RoutingTable, started: NIODeadline,
                         context: ChannelHandlerContext) {
        if let deferred = response.deferred {
            deferred.start(exchange(for: request, table: table, started: started, context: context))
            return
        }
        var answer = response
        if ErrorResponses.needsBody(answer) { table.fillErrorBody(&answer, for: request) }
        send(answer, for: request, observer: table.observer, started: started, context: context)
    }

    private func exchange(for request: Request, table: RoutingTable, started: NIODeadline,
                          context: ChannelHandlerContext) -> LoopExchange {
        let loop = context.eventLoop
        let finish = NIOLoopBound({ [self] (outcome: LoopExchange.Outcome) in
            // After an error answer to a streamed body that broke off, that was the answer.
            guard context.channel.isActive, !responseBegun else { return }
            for timer in timers { timer.cancel() }
            timers = []
            switch outcome {
            case .response(let response, let continued):
                deliver(response, for: continued ?? request, table: table, started: started, context: context)
            case .fault:
                // Misbehaviour on purpose (`respond: {fault}`): this stream is reset, the connection and
                // its other streams go on.
                context.close(promise: nil)
            case .switchProtocols(let response, let upgrade):
                guard request.context.isExtendedConnect, let upgrade = upgrade as? any ChannelUpgrade else {
                    // Nothing else switches protocols on a stream.
                    send(Response(status: 501), for: request, observer: table.observer, started: started, context: context)
                    return
                }
                tunnel(response, to: upgrade, for: request, observer: table.observer, started: started, context: context)
            }
        }, eventLoop: loop)
        let timer = NIOLoopBound({ [self] (delay: TimeAmount, work: @escaping @Sendable () -> Void) in
            guard context.channel.isActive else { return }
            timers.append(loop.assumeIsolated().scheduleTask(in: delay, work))
        }, eventLoop: loop)
        return LoopExchange(loop: loop, finish: finish, timer: timer)
    }

    /// RFC 8441 §5: the extended CONNECT's 2xx, then the stream carries the new protocol's bytes
    /// as DATA frames (`HTTP2StreamBytes`) and its handlers take the stream over.
    private func tunnel(_ response: Response, to upgrade: any ChannelUpgrade, for request: Request,
                        observer: (any RequestObserver)?, started: NIODeadline, context: ChannelHandlerContext) {
        var fields = HPACKHeaders()
        fields.add(name: ":status", value: String(response.status))
        for field in response.headers where !Self.connectionSpecific(field.name) {
            fields.add(name: field.name.lowercased(), value: field.value)
        }
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: fields, endStream: false))), promise: nil)
        server.recordAnswer(request, status: response.status, bodyBytes: 0, observer: observer, started: started)
        do {
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandler(HTTP2StreamBytes(connection: connection))
            try upgrade.install(on: context.channel)
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            server.logger.warning("protocol switch failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func send(_ response: Response, for request: Request, observer: (any RequestObserver)?, started: NIODeadline,
                      context: ChannelHandlerContext) {
        responseBegun = true
        // A 2xx to an extended CONNECT would tell the client its WebSocket is open (RFC 8441 §5).
        if request.context.isExtendedConnect, (200..<300).contains(response.status) {
            let refusal = server.errorResponse(ProtocolError(status: 400, reason: "this route does not speak WebSocket"),
                                               accept: request.headers["Accept"])
            return send(refusal, for: request, observer: observer, started: started, context: context)
        }
        let status = response.status
        let bodyAllowed = status >= 200 && status != 204 && status != 304 && !request.isHead
        var fields = HPACKHeaders()
        fields.reserveCapacity(response.headers.count + 4)
        fields.add(name: ":status", value: String(status))
        for field in response.headers where !Self.connectionSpecific(field.name) {
            fields.add(name: field.name.lowercased(), value: field.value)
        }
        if !response.headers.contains("Date") { fields.add(name: "date", value: server.clock.httpDate()) }
        if server.server.serverHeader, !response.headers.contains("Server") { fields.add(name: "server", value: "pagi-serve") }
        var streamed: (any BodyStream)?
        switch response.body {
        case .stream(let stream):
            if bodyAllowed { streamed = stream }
            if let length = stream.length { fields.add(name: "content-length", value: String(length)) }
        case .empty: if status >= 200, status != 204, status != 304 { fields.add(name: "content-length", value: "0") }
        case .omitted(length: nil): break
        default: if status >= 200, status != 204, status != 304 { fields.add(name: "content-length", value: String(response.body.length)) }
        }
        let bodyless = !bodyAllowed || response.body.length == 0 && streamed == nil
        context.write(wrapOutboundOut(.headers(.init(headers: fields, endStream: bodyless))), promise: nil)
        server.recordAnswer(request, status: status, bodyBytes: bodyAllowed ? response.body.length : 0, observer: observer, started: started)
        guard !bodyless else {
            context.flush()
            return
        }
        switch response.body {
        case .bytes(let bytes):
            context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(context.channel.allocator.buffer(bytes: bytes)), endStream: true))),
                                  promise: nil)
        case .file(let file, let offset, let length):
            sendFile(file, slices: [(nil, offset, length)], trailer: nil, context: context)
        case .multipart(let file, let parts, let trailer):
            sendFile(file, slices: parts.map { ($0.preamble, $0.offset, $0.length) }, trailer: trailer, context: context)
        case .stream(let stream):
            let sink = ChannelBodySink(context: context, framing: .http2) { [weak self] closeStream in
                self?.sink = nil
                if closeStream { context.close(promise: nil) }
            }
            self.sink = sink
            streamIsOpenEnded = stream.isOpenEnded
            stream.start(sink)
        case .empty, .omitted:
            context.flush()
        }
    }

    private func sendFile(_ file: OpenFile, slices: [FileChunks.Slice], trailer: [UInt8]?, context: ChannelHandlerContext) {
        guard let descriptor = file.take() else {
            context.close(promise: nil)
            return
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        let done = context.eventLoop.makePromise(of: Void.self)
        done.futureResult.whenFailure { [channel = context.channel] _ in channel.close(promise: nil) }
        FileChunks.send(handle, slices: slices[...], trailer: trailer, reader: connection.fileReader, context: context, promise: done) { bytes, last in
            NIOAny(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(bytes), endStream: last)))
        }
    }

    /// Fields HTTP/2 forbids (RFC 9113 §8.2.2): the connection's business, not a stream's.
    private static func connectionSpecific(_ name: String) -> Bool {
        name.asciiCaseInsensitiveEquals("connection") || name.asciiCaseInsensitiveEquals("keep-alive")
            || name.asciiCaseInsensitiveEquals("transfer-encoding") || name.asciiCaseInsensitiveEquals("upgrade")
            || name.asciiCaseInsensitiveEquals("proxy-connection")
    }
}
