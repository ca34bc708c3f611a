import PagiConfig
import PagiCore

/// The options of one `websocket` route (contract §5.5), read from the loader's validated value.
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

    /// Reads the options; the loader has already checked every key's shape, so a value of an
    /// unexpected shape only means the default. `pattern` is the route's, for the channel name.
    init(_ value: ConfigValue, pattern: String) throws(ChannelNameError) {
        guard case .map(let entries) = value else { return }
        for (key, value) in entries {
            switch (key, value) {
            case ("broadcast", .string(let channel)): mode = .broadcast(try ChannelName(channel, pattern: pattern))
            case ("subscribe", .string(let channel)): mode = .subscribe(try ChannelName(channel, pattern: pattern))
            case ("max_message", _): maxMessage = value.sizeValue ?? maxMessage
            case ("ping_interval", _): pingInterval = value.secondsValue ?? pingInterval
            case ("idle_timeout", _): idleTimeout = value.secondsValue ?? idleTimeout
            case ("compression", .bool(let on)): compression = on
            case ("subprotocols", .list): subprotocols = value.stringItems
            case ("origins", .list): origins = value.stringItems.map { $0.lowercased() }
            default: break
            }
        }
    }
}
