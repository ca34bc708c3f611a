import NIOCore
import PagiCore

/// A protocol switch after a `101 Switching Protocols` response (WebSocket). The engine writes the
/// 101 head, calls `install`, hands the bytes it had already read past the request to the new
/// handlers, and removes its HTTP handler: from then on the connection belongs to them.
public protocol ChannelUpgrade: ConnectionUpgrade {
    /// Adds the new protocol's handlers to the end of `channel`'s pipeline. Runs on the channel's
    /// event loop; the server's graceful shutdown reaches them as `ChannelShouldQuiesceEvent`.
    func install(on channel: any Channel) throws
}
