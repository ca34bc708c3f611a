import PagiConfig
import PagiCore

/// `sse: {subscribe: CHANNEL}` or `sse: {ticker: {...}}` (docs/configuration.md §9.6): an endless
/// `text/event-stream` body. Ends when the client leaves, falls too far behind, or the server stops.
struct SSEHandler: Handler {
    enum Source: Sendable {
        case channel(ChannelName, ChannelHubs)
        case ticker(Ticker)
    }
    let source: Source
    let options: SSEConfig

    func handle(_ request: Request) -> Response {
        guard request.method == "GET" || request.isHead else {
            return Response(status: 405, headers: ["Allow": "GET, HEAD"])
        }
        let headers: HeaderFields = [
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            // Tells nginx-style proxies in front not to hold events back in their buffers.
            "X-Accel-Buffering": "no",
        ]
        let lastEventID = request.headers["Last-Event-ID"].flatMap { UInt64($0.trimmingOWS) }
        return Response(status: 200, headers: headers, body: .stream(EventStream(
            source: source, options: options, request: request, lastEventID: lastEventID)))
    }
}

/// One client's stream: `retry:` first, keepalive comments, then the source's events.
struct EventStream: BodyStream {
    var isOpenEnded: Bool { true }
    let source: SSEHandler.Source
    let options: SSEConfig
    let request: Request
    let lastEventID: UInt64?

    func start(_ sink: any BodySink) {
        let retry = ServerSentEvent.retry(milliseconds: options.retryMilliseconds)
        if let keepalive = options.keepalive { Self.keepAlive(sink, every: keepalive) }
        switch source {
        case .channel(let name, let hubs):
            hubs.attach(sink, to: name.resolve(for: request), after: lastEventID, preamble: retry)
        case .ticker(let ticker):
            sink.write(retry)
            // Tick numbers go on from where a resuming client left off.
            ticker.tick(sink, number: (lastEventID ?? 0) &+ 1, request: request)
        }
    }

    private static func keepAlive(_ sink: any BodySink, every interval: Duration) {
        sink.schedule(after: interval) {
            guard send(ServerSentEvent.keepalive, to: sink) else { return }
            keepAlive(sink, every: interval)
        }
    }

    /// Writes unless the client is too far behind, in which case it is dropped; false when the stream is over.
    static func send(_ bytes: [UInt8], to sink: any BodySink) -> Bool {
        guard sink.pendingBytes <= SSEConfig.maxPendingBytes else {
            sink.close()
            return false
        }
        return sink.write(bytes)
    }
}
