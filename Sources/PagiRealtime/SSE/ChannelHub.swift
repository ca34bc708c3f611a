import Foundation
import NIOCore
import PagiConfig
import PagiCore
import Synchronization

/// The SSE clients of one channel on one route: one broker subscription fanned out to all of
/// them, the event ids, and the last `replay` events for clients that resume.
///
/// Event ids: the first event of a hub gets the time the hub started in microseconds since 1970,
/// each later one the previous id + 1. So ids only grow for a channel, even across a hub that
/// expired and started again or a server restart, and "the events after `Last-Event-ID`" is
/// simply every buffered event with a larger id.
final class ChannelHub: Sendable {
    private struct Event {
        var id: UInt64
        var bytes: [UInt8]
    }
    private struct State {
        var clients: [ObjectIdentifier: any BodySink] = [:]
        var events = CircularBuffer<Event>()
        var eventBytes = 0
        var nextID: UInt64
        var subscription: ChannelSubscription?
        /// Bumped whenever the hub becomes idle, so a stale expiry check does nothing.
        var idleGeneration = 0
    }

    let channel: String
    private let replay: Int
    /// Kept events never hold more than this, whatever `replay` says (messages may be megabytes).
    static let maxReplayBytes = 4 << 20
    private let state: Mutex<State>

    init(channel: String, replay: Int) {
        self.channel = channel
        self.replay = replay
        state = Mutex(State(nextID: UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))))
    }

    func listen(to broker: any ChannelBroker) {
        let subscription = broker.subscribe(channel, receivers: { [weak self] in self?.clientCount ?? 0 }) { [weak self] message in
            self?.deliver(message)
        }
        state.withLock { $0.subscription = subscription }
    }

    var clientCount: Int { state.withLock { $0.clients.count } }

    /// Adds a client: it gets `preamble`, then with `lastEventID` every buffered event after that
    /// one. Replay and registration happen under one lock, so no event is missed or sent twice,
    /// and a client that has read the preamble is known to be listening.
    func attach(_ sink: any BodySink, after lastEventID: UInt64?, preamble: [UInt8]) {
        state.withLock { state in
            sink.write(preamble)
            if let lastEventID {
                for event in state.events where event.id > lastEventID { sink.write(event.bytes) }
            }
            state.clients[ObjectIdentifier(sink)] = sink
        }
    }

    /// Removes a client; returns the idle generation when it was the last one.
    func detach(_ sink: any BodySink) -> Int? {
        state.withLock { state in
            state.clients[ObjectIdentifier(sink)] = nil
            guard state.clients.isEmpty else { return nil }
            state.idleGeneration += 1
            return state.idleGeneration
        }
    }

    /// Stops listening if the hub has stayed idle since `generation`; true when it did.
    func expire(ifIdleSince generation: Int) -> Bool {
        let subscription: ChannelSubscription? = state.withLock { state in
            guard state.clients.isEmpty, state.idleGeneration == generation else { return nil }
            defer { state.subscription = nil }
            return state.subscription
        }
        subscription?.cancel()
        return subscription != nil
    }

    /// Numbers, records and sends one message. Sinks only queue, so holding the lock is short,
    /// and it keeps every client's events in id order when messages arrive on several threads.
    private func deliver(_ message: ChannelMessage) {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let bytes = Self.encode(message, id: id)
            if replay > 0 {
                state.events.append(Event(id: id, bytes: bytes))
                state.eventBytes += bytes.count
                while state.events.count > replay || state.eventBytes > Self.maxReplayBytes, let dropped = state.events.popFirst() {
                    state.eventBytes -= dropped.bytes.count
                }
            }
            for sink in state.clients.values {
                if sink.pendingBytes > SSEConfig.maxPendingBytes {
                    sink.close()
                } else {
                    sink.write(bytes)
                }
            }
        }
    }

    /// Text as is; binary (from a WebSocket member, say) cannot travel as SSE data, so it is sent
    /// base64-encoded as a `binary` event, which `onmessage` ignores unless asked for.
    static func encode(_ message: ChannelMessage, id: UInt64) -> [UInt8] {
        if message.isText { return ServerSentEvent.encode(id: String(id), event: nil, data: message.data) }
        return ServerSentEvent.encode(id: String(id), event: "binary", data: Array(Data(message.data).base64EncodedString().utf8))
    }
}

/// The hubs of one `sse: {subscribe}` route, by resolved channel name. A hub whose last client
/// left keeps listening for `linger`, so a client that reconnects gets what it missed meanwhile;
/// then it is dropped (templated names would otherwise pile up hubs nobody uses).
final class ChannelHubs: Sendable {
    private let broker: any ChannelBroker
    private let replay: Int
    private let linger: TimeAmount
    /// Detaching and expiring run here, never inside a sink callback that may hold a hub's lock.
    private let housekeeping: any EventLoop
    private let hubs = Mutex<[String: ChannelHub]>([:])

    init(broker: any ChannelBroker, replay: Int, linger: TimeAmount, housekeeping: any EventLoop) {
        self.broker = broker
        self.replay = replay
        self.linger = replay > 0 ? linger : .zero
        self.housekeeping = housekeeping
    }

    func attach(_ sink: any BodySink, to channel: String, after lastEventID: UInt64?, preamble: [UInt8]) {
        hubs.withLock { hubs in
            let hub = hubs[channel] ?? {
                let hub = ChannelHub(channel: channel, replay: replay)
                hub.listen(to: broker)
                hubs[channel] = hub
                return hub
            }()
            hub.attach(sink, after: lastEventID, preamble: preamble)
        }
        sink.onEnd { [weak self] in
            guard let self else { return }
            housekeeping.execute { self.detach(sink, from: channel) }
        }
    }

    var count: Int { hubs.withLock { $0.count } }

    private func detach(_ sink: any BodySink, from channel: String) {
        guard let generation = hubs.withLock({ $0[channel]?.detach(sink) }) else { return }
        if linger == .zero {
            expire(channel, generation: generation)
        } else {
            housekeeping.scheduleTask(in: linger) { [weak self] in self?.expire(channel, generation: generation) }
        }
    }

    private func expire(_ channel: String, generation: Int) {
        hubs.withLock { hubs in
            if let hub = hubs[channel], hub.expire(ifIdleSince: generation) { hubs[channel] = nil }
        }
    }
}
