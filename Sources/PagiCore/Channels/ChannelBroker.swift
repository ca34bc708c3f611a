import Synchronization

/// One message on a pub/sub channel. `isText` survives the trip so a WebSocket member receives a
/// text frame for text and a binary frame for binary, and SSE can refuse binary data.
public struct ChannelMessage: Sendable, Equatable {
    public var data: [UInt8]
    public var isText: Bool

    public init(data: [UInt8], isText: Bool = true) {
        self.data = data
        self.isText = isText
    }
    public init(text: String) { self.init(data: Array(text.utf8), isText: true) }
}

public struct ChannelError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Pub/sub channels (contract §2.3): in this process (`memory`) or through Redis.
/// Receivers are called on whatever thread delivers the message; they must hop to their own.
public protocol ChannelBroker: Sendable {
    /// Starts delivering the messages of `channel` to `receive` until the subscription is cancelled.
    func subscribe(_ channel: String, _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription
    /// Publishes one message; `completion` gets the number of receivers that got it (for Redis,
    /// as counted by Redis: subscribed connections of every server), or an error when the message
    /// could not be published (Redis unreachable).
    func publish(_ message: ChannelMessage, to channel: String,
                 completion: @escaping @Sendable (Result<Int, ChannelError>) -> Void)
}

/// A live subscription; cancelling it (or dropping the last reference) stops delivery.
public final class ChannelSubscription: Sendable {
    private let cancellation: Mutex<(@Sendable () -> Void)?>

    public init(onCancel: @escaping @Sendable () -> Void) { cancellation = Mutex(onCancel) }

    public func cancel() {
        let action = cancellation.withLock { action in
            defer { action = nil }
            return action
        }
        action?()
    }
    deinit { cancel() }
}

/// `pubsub: memory`: channels shared by every thread of this process.
public final class MemoryChannelBroker: ChannelBroker {
    private struct State {
        var nextID = 0
        var receivers: [String: [Int: @Sendable (ChannelMessage) -> Void]] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func subscribe(_ channel: String, _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        let id = state.withLock { state in
            state.nextID += 1
            state.receivers[channel, default: [:]][state.nextID] = receive
            return state.nextID
        }
        return ChannelSubscription { [weak self] in
            self?.state.withLock { state in
                state.receivers[channel]?[id] = nil
                if state.receivers[channel]?.isEmpty == true { state.receivers[channel] = nil }
            }
        }
    }

    public func publish(_ message: ChannelMessage, to channel: String,
                        completion: @escaping @Sendable (Result<Int, ChannelError>) -> Void) {
        // Deliver outside the lock: a receiver may subscribe or cancel while handling the message.
        let receivers = state.withLock { Array(($0.receivers[channel] ?? [:]).values) }
        for receive in receivers { receive(message) }
        completion(.success(receivers.count))
    }
}
