import NIOCore
import PagiConfig
import NIOPosix
import PagiCore

/// `pubsub: redis://…` (docs/configuration.md §6): channels through Redis PUBLISH/SUBSCRIBE, so every worker
/// and every server sharing the Redis sees every message. Two connections, opened on first use:
/// one in subscribe mode, one for publishing. A publish while Redis is unreachable fails at once
/// (the `publish` handler answers 503); both connections come back on their own with backoff.
public final class RedisChannelBroker: ChannelBroker {
    private let publisher: RedisPublisher
    private let subscriber: RedisSubscriber

    public init(endpoint: RedisEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        publisher = RedisPublisher(endpoint: endpoint, loop: group.next())
        subscriber = RedisSubscriber(endpoint: endpoint, loop: group.next())
    }

    /// Receivers are called on the subscriber connection's event loop.
    public func subscribe(_ channel: String, _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        subscriber.subscribe(channel, receive)
    }

    /// `receivers` counts subscribed connections, as Redis does: one per server with any subscriber.
    public func publish(_ message: ChannelMessage, to channel: String,
                        completion: @escaping @Sendable (Result<Int, PagiCore.ChannelError>) -> Void) {
        publisher.publish(message, to: channel, completion: completion)
    }
}
