import NIOCore
import PagiConfig
import PagiCore

/// The connection that sends PUBLISH commands, pipelined: Redis answers in order, so each reply
/// (the number of subscribed connections that got the message) goes to the oldest waiting publish.
final class RedisPublisher: Sendable {
    typealias Completion = @Sendable (Result<Int, PagiCore.ChannelError>) -> Void

    private struct State {
        /// Replies still owed by Redis, oldest first; handshake replies are `nil`.
        var awaiting = CircularBuffer<Completion?>()
        /// Publishes made while the first connection attempt is under way.
        var queued: [(command: ByteBuffer, completion: Completion)] = []
    }
    /// Past this many unanswered publishes Redis is not keeping up: refuse rather than buffer without bound.
    static let maximumInFlight = 10_000

    private let state: NIOLoopBoundBox<State>
    private let connection: RedisConnection

    init(endpoint: RedisEndpoint, loop: any EventLoop) {
        state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: loop)
        let box = state
        connection = RedisConnection(endpoint: endpoint, loop: loop, events: .init(
            connected: { channel in Self.connected(channel, endpoint: endpoint, state: box) },
            received: { value in Self.received(value, state: box) },
            down: { Self.down(endpoint: endpoint, state: box) }))
    }

    /// The connection (and its reconnect attempts) ends with its owner.
    deinit { connection.shutdown() }

    func publish(_ message: ChannelMessage, to channel: String, completion: @escaping Completion) {
        connection.loop.execute { [self] in
            var command = ByteBufferAllocator().buffer(capacity: message.data.count + channel.utf8.count + 40)
            RESPCommand.encode([Array("PUBLISH".utf8), Array(channel.utf8), message.data], into: &command)
            switch connection.phase {
            case .connected(let channel):
                guard state.value.awaiting.count < Self.maximumInFlight else {
                    completion(.failure(PagiCore.ChannelError("Redis at \(connection.endpoint) is not keeping up")))
                    return
                }
                state.value.awaiting.append(completion)
                channel.writeAndFlush(command, promise: nil)
            case .idle, .connecting:
                state.value.queued.append((command, completion))
                connection.start()
            case .waitingToRetry, .shutDown:
                // Fail fast: a publish must never look delivered when it was not.
                completion(.failure(PagiCore.ChannelError("Redis at \(connection.endpoint) is unreachable")))
            }
        }
    }

    private static func connected(_ channel: any Channel, endpoint: RedisEndpoint, state: NIOLoopBoundBox<State>) {
        for command in endpoint.handshake {
            var buffer = channel.allocator.buffer(capacity: 64)
            RESPCommand.encode(command, into: &buffer)
            state.value.awaiting.append(nil)
            channel.write(buffer, promise: nil)
        }
        for (command, completion) in state.value.queued {
            state.value.awaiting.append(completion)
            channel.write(command, promise: nil)
        }
        state.value.queued = []
        channel.flush()
    }

    private static func received(_ value: RESPValue, state: NIOLoopBoundBox<State>) {
        guard let waiting = state.value.awaiting.popFirst() else { return }
        guard let completion = waiting else { return }
        switch value {
        case .integer(let receivers): completion(.success(receivers))
        case .error(let message): completion(.failure(PagiCore.ChannelError("Redis refused the publish: \(message)")))
        default: completion(.failure(PagiCore.ChannelError("unexpected reply from Redis")))
        }
    }

    /// Every publish not answered yet is failed: whether Redis delivered it is unknown.
    private static func down(endpoint: RedisEndpoint, state: NIOLoopBoundBox<State>) {
        let unanswered = state.value.awaiting.compactMap { $0 }
        let queued = state.value.queued.map(\.completion)
        state.value.awaiting.removeAll()
        state.value.queued = []
        for completion in unanswered { completion(.failure(PagiCore.ChannelError("lost the connection to Redis at \(endpoint)"))) }
        for completion in queued { completion(.failure(PagiCore.ChannelError("Redis at \(endpoint) is unreachable"))) }
    }
}
