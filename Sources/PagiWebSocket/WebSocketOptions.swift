import PagiConfig
import PagiCore

/// The options of one `websocket` route (docs/configuration.md §9.5), as the connection uses them.
struct WebSocketOptions: Sendable {
    enum Mode: Sendable, Equatable {
        /// Every message goes back to its sender.
        case echo
        /// Every message is published to the channel; every channel message goes to the member.
        case broadcast(ChannelName)
        /// A read-only feed of the channel.
        case subscribe(ChannelName)
    }

    var mode: Mode = .echo
    /// Largest message accepted (after decompression), in bytes; larger ones close with 1009.
    var maxMessage = 1 << 20
    /// Seconds between server pings (0: never); a peer that leaves a ping unanswered until the
    /// next one is dropped.
    var pingInterval: Double = 30
    /// Seconds without a message from the peer before the server closes (0: never).
    var idleTimeout: Double = 0
    var compression = true
    var subprotocols: [String] = []
    /// Allowed `Origin` values (empty: any origin).
    var origins: [String] = []
    /// Outbound bytes a member may leave unread before it is dropped with 1008. Not a contract
    /// key: derived from `max_message` so one whole message always fits.
    var sendBuffer: Int { max(4 * maxMessage, 1 << 20) }

    /// The loader's options with the channel name compiled against the route's `pattern`.
    init(_ config: WebSocketConfig, pattern: RoutePattern) throws(ChannelNameError) {
        switch config.mode {
        case .echo: mode = .echo
        case .broadcast(let channel): mode = .broadcast(try ChannelName(channel, pattern: pattern))
        case .subscribe(let channel): mode = .subscribe(try ChannelName(channel, pattern: pattern))
        }
        maxMessage = config.maxMessage
        pingInterval = config.pingInterval
        idleTimeout = config.idleTimeout
        compression = config.compression
        subprotocols = config.subprotocols
        origins = config.origins
    }
}
