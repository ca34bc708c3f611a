import NIOCore
import NIOWebSocket
import PagiConfig
import PagiCore
import PagiEngine

/// The `websocket` route handler (docs/configuration.md §9.5): answers the opening handshake with 101 and
/// hands the connection to `WebSocketConnection`, or refuses it with an HTTP status.
public struct WebSocketHandler: Handler {
    let options: WebSocketOptions
    let broker: any ChannelBroker

    /// `pattern` is the route's path pattern: a channel name may use its parameters; one that does
    /// not fit the route is a config error at `location`. Every route of one compiled config shares `broker`.
    public init(_ config: WebSocketConfig, pattern: RoutePattern, broker: any ChannelBroker, location: SourceLocation) throws {
        do {
            options = try WebSocketOptions(config, pattern: pattern)
        } catch {
            throw ConfigError(diagnostics: [Diagnostic(.error, "\(error)", at: location)])
        }
        self.broker = broker
    }

    public func handle(_ request: Request) -> Response {
        switch WebSocketHandshake.evaluate(request, options: options) {
        case .refuse(let response):
            return response
        case .accept(let agreement):
            return .switching(Response(status: agreement.status, headers: agreement.headers), to: WebSocketUpgrade(session: WebSocketSession(
                options: options, role: role(for: request), deflate: agreement.deflate, broker: broker)))
        }
    }

    private func role(for request: Request) -> WebSocketSession.Role {
        switch options.mode {
        case .echo: return .echo
        case .broadcast(let channel): return .broadcast(channel.resolve(for: request))
        case .subscribe(let channel): return .subscribe(channel.resolve(for: request))
        }
    }
}

/// Everything one WebSocket connection needs, fixed by its handshake.
struct WebSocketSession: Sendable {
    enum Role: Sendable {
        case echo
        /// Member of a channel: publishes what it receives, gets every channel message.
        case broadcast(String)
        /// Read-only listener of a channel.
        case subscribe(String)
    }

    var options: WebSocketOptions
    var role: Role
    var deflate: DeflateParameters?
    var broker: any ChannelBroker
}

/// Replaces the HTTP handler after the 101: frame decoder, frame encoder, connection logic.
struct WebSocketUpgrade: ChannelUpgrade {
    let session: WebSocketSession

    func install(on channel: any Channel) throws {
        // A compressed frame is rarely larger than its message; the slack covers incompressible data.
        let maxMessage = session.options.maxMessage
        let maxFrame = min(maxMessage + maxMessage / 16 + 1024, Int(UInt32.max))
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrame)))
        try pipeline.addHandler(WebSocketFrameEncoder())
        try pipeline.addHandler(WebSocketConnection(session: session))
    }
}
