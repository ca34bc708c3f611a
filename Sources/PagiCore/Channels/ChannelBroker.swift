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

/// Pub/sub channels (docs/configuration.md §6): in this process (`memory`) or through Redis.
/// Receivers are called on whatever thread delivers the message; they must hop to their own.
public protocol ChannelBroker: Sendable {
    /// Starts delivering the messages of `channel` to `receive` until the subscription is cancelled.
    func subscribe(_ channel: String, _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription
    /// Like `subscribe`, for one subscription that fans out to `receivers()` local receivers (an
    /// SSE channel hub), so `publish` counts them rather than the one subscription.
    func subscribe(_ channel: String, receivers: @escaping @Sendable () -> Int,
                   _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription
    /// Publishes one message; `completion` gets the number of receivers that got it (for Redis,
    /// as counted by Redis: subscribed connections of every server), or an error when the message
    /// could not be published (Redis unreachable).
    func publish(_ message: ChannelMessage, to channel: String,
                 completion: @escaping @Sendable (Result<Int, ChannelError>) -> Void)
}

extension ChannelBroker {
    /// Brokers that count subscriptions elsewhere (Redis counts subscribed connections) ignore `receivers`.
    public func subscribe(_ channel: String, receivers: @escaping @Sendable () -> Int,
                          _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        subscribe(channel, receive)
    }
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
    private struct Receiver {
        /// How many receivers this subscription stands for; nil for one.
        var count: (@Sendable () -> Int)?
        var receive: @Sendable (ChannelMessage) -> Void
    }
    private struct State {
        var nextID = 0
        var receivers: [String: [Int: Receiver]] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func subscribe(_ channel: String, _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        add(Receiver(count: nil, receive: receive), to: channel)
    }

    public func subscribe(_ channel: String, receivers: @escaping @Sendable () -> Int,
                          _ receive: @escaping @Sendable (ChannelMessage) -> Void) -> ChannelSubscription {
        add(Receiver(count: receivers, receive: receive), to: channel)
    }

    private func add(_ receiver: Receiver, to channel: String) -> ChannelSubscription {
        let id = state.withLock { state in
            state.nextID += 1
            state.receivers[channel, default: [:]][state.nextID] = receiver
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
        for receiver in receivers { receiver.receive(message) }
        completion(.success(receivers.reduce(0) { $0 + ($1.count?() ?? 1) }))
    }
}
