import NIOCore
import PagiConfig
import PagiCore
import Synchronization

/// The connection in subscribe mode. Redis is subscribed to a channel while at least one local
/// receiver wants it (reference counted), and to all of them again after a reconnect.
final class RedisSubscriber: Sendable {
    typealias Receive = @Sendable (ChannelMessage) -> Void

    private struct Receivers {
        var nextID = 0
        var byChannel: [String: [Int: Receive]] = [:]
    }
    /// Read by the delivering thread and changed by subscribing ones.
    private let receivers = Mutex(Receivers())
    /// Channels Redis has been asked to send on the current connection; on the loop only.
    private let subscribedOnServer: NIOLoopBoundBox<Set<String>>
    private let channelBox: NIOLoopBoundBox<(any Channel)?>
    private let connection: RedisConnection
    /// SUBSCRIBE takes many channels at once; a reconnect with thousands is split to keep commands small.
    private static let channelsPerCommand = 512

    init(endpoint: RedisEndpoint, loop: any EventLoop) {
        subscribedOnServer = NIOLoopBoundBox.makeBoxSendingValue([], eventLoop: loop)
        channelBox = NIOLoopBoundBox.makeBoxSendingValue(nil, eventLoop: loop)
        let link = WeakSubscriber()
        connection = RedisConnection(endpoint: endpoint, loop: loop, events: .init(
            connected: { channel in link.subscriber?.connected(channel, endpoint: endpoint) },
            received: { value in link.subscriber?.received(value) },
            down: { link.subscriber?.down() }))
        link.subscriber = self
    }

    /// The connection (and its reconnect attempts) ends with its owner.
    deinit { connection.shutdown() }

    func subscribe(_ channel: String, _ receive: @escaping Receive) -> ChannelSubscription {
        let (id, first) = receivers.withLock { receivers in
            receivers.nextID += 1
            let first = receivers.byChannel[channel] == nil
            receivers.byChannel[channel, default: [:]][receivers.nextID] = receive
            return (receivers.nextID, first)
        }
        if first { connection.loop.execute { [self] in connection.start(); synchronise(channel) } }
        return ChannelSubscription { [weak self] in self?.unsubscribe(channel, id: id) }
    }

    private func unsubscribe(_ channel: String, id: Int) {
        let last = receivers.withLock { receivers in
            receivers.byChannel[channel]?[id] = nil
            guard receivers.byChannel[channel]?.isEmpty == true else { return false }
            receivers.byChannel[channel] = nil
            return true
        }
        if last { connection.loop.execute { [self] in synchronise(channel) } }
    }

    /// Makes Redis's view of `channel` match whether anyone here wants it. On the loop.
    private func synchronise(_ channel: String) {
        guard let connected = channelBox.value else { return }
        let wanted = receivers.withLock { $0.byChannel[channel] != nil }
        let subscribed = subscribedOnServer.value.contains(channel)
        guard wanted != subscribed else { return }
        if wanted { subscribedOnServer.value.insert(channel) } else { subscribedOnServer.value.remove(channel) }
        send([wanted ? "SUBSCRIBE" : "UNSUBSCRIBE", channel], on: connected)
    }

    private func connected(_ channel: any Channel, endpoint: RedisEndpoint) {
        channelBox.value = channel
        for command in endpoint.handshake { send(command, on: channel, flush: false) }
        let wanted = receivers.withLock { Array($0.byChannel.keys) }
        subscribedOnServer.value = Set(wanted)
        var start = 0
        while start < wanted.count {
            let end = min(wanted.count, start + Self.channelsPerCommand)
            send(["SUBSCRIBE"] + wanted[start..<end], on: channel, flush: false)
            start = end
        }
        channel.flush()
    }

    private func down() {
        channelBox.value = nil
        subscribedOnServer.value = []
    }

    private func received(_ value: RESPValue) {
        // Push messages are `["message", channel, payload]`; subscribe confirmations and handshake replies need nothing.
        guard case .array(let items?) = value, items.count == 3, items[0].bytes == Self.messageKind,
              let channelBytes = items[1].bytes, let payload = items[2].bytes
        else { return }
        let channel = String(decoding: channelBytes, as: UTF8.self)
        let targets = receivers.withLock { Array(($0.byChannel[channel] ?? [:]).values) }
        guard !targets.isEmpty else { return }
        // Redis keeps no text/binary flag: valid UTF-8 is text (what `redis-cli PUBLISH` sends too).
        let message = ChannelMessage(data: payload, isText: String(validating: payload, as: UTF8.self) != nil)
        for receive in targets { receive(message) }
    }

    private static let messageKind = Array("message".utf8)

    private func send(_ command: [String], on channel: any Channel, flush: Bool = true) {
        var buffer = channel.allocator.buffer(capacity: 64)
        RESPCommand.encode(command, into: &buffer)
        if flush { channel.writeAndFlush(buffer, promise: nil) } else { channel.write(buffer, promise: nil) }
    }
}

/// Lets the connection's callbacks reach the subscriber without keeping it alive.
private final class WeakSubscriber: @unchecked Sendable {
    // @unchecked: set once in `RedisSubscriber.init`, before any callback can run, then only read.
    weak var subscriber: RedisSubscriber?
}
