import NIOCore
import PagiConfig
import NIOPosix

/// One connection to Redis that is re-established with exponential backoff whenever it drops,
/// until `shutdown()`. Everything runs on `loop`; the owner hears about it through `Events`.
final class RedisConnection: Sendable {
    struct Events: Sendable {
        /// The connection is up; the owner sends its handshake and state.
        var connected: @Sendable (_ channel: any Channel) -> Void
        /// A reply or push message arrived.
        var received: @Sendable (RESPValue) -> Void
        /// A connection attempt failed or the connection dropped.
        var down: @Sendable () -> Void
    }

    enum Phase {
        /// Never asked to connect.
        case idle
        case connecting
        case connected(any Channel)
        /// Redis is known to be unreachable; the next attempt is scheduled.
        case waitingToRetry
        case shutDown
    }

    private struct State {
        var phase = Phase.idle
        var backoff: TimeAmount
        var retry: Scheduled<Void>?
    }

    static let initialBackoff = TimeAmount.milliseconds(100)
    static let maximumBackoff = TimeAmount.seconds(2)
    static let connectTimeout = TimeAmount.seconds(1)

    let loop: any EventLoop
    let endpoint: RedisEndpoint
    private let events: Events
    private let state: NIOLoopBoundBox<State>

    init(endpoint: RedisEndpoint, loop: any EventLoop, events: Events) {
        self.endpoint = endpoint
        self.loop = loop
        self.events = events
        state = NIOLoopBoundBox.makeBoxSendingValue(State(backoff: Self.initialBackoff), eventLoop: loop)
    }

    /// The current phase; on `loop` only.
    var phase: Phase { state.value.phase }

    /// Connects unless already connected, connecting or shut down. On `loop` only.
    func start() {
        guard case .idle = state.value.phase else { return }
        connect()
    }

    func shutdown() {
        loop.execute { [self] in
            let previous = state.value.phase
            state.value.phase = .shutDown
            state.value.retry?.cancel()
            state.value.retry = nil
            if case .connected(let channel) = previous { channel.close(promise: nil) }
        }
    }

    private func connect() {
        state.value.phase = .connecting
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try channel.pipeline.syncOperations.addHandler(RESPInboundHandler(connection: self))
                }
            }
        bootstrap.connect(host: endpoint.host, port: endpoint.port).hop(to: loop).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard case .connecting = state.value.phase else {
                    channel.close(promise: nil)
                    return
                }
                state.value.phase = .connected(channel)
                state.value.backoff = Self.initialBackoff
                events.connected(channel)
            case .failure:
                guard case .connecting = state.value.phase else { return }
                events.down()
                scheduleRetry()
            }
        }
    }

    /// The channel closed (Redis restarted, network gone, protocol error). On `loop`.
    fileprivate func closed(_ channel: any Channel) {
        guard case .connected(let current) = state.value.phase, current === channel else { return }
        events.down()
        scheduleRetry()
    }

    fileprivate func received(_ value: RESPValue) { events.received(value) }

    private func scheduleRetry() {
        state.value.phase = .waitingToRetry
        let delay = state.value.backoff
        state.value.backoff = min(delay * 2, Self.maximumBackoff)
        state.value.retry = loop.assumeIsolated().scheduleTask(in: delay) { [self] in
            state.value.retry = nil
            guard case .waitingToRetry = state.value.phase else { return }
            connect()
        }
    }
}

/// Hands decoded values and the end of the connection to its `RedisConnection`.
private final class RESPInboundHandler: ChannelInboundHandler {
    typealias InboundIn = RESPValue
    private let connection: RedisConnection

    init(connection: RedisConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A broken reply stream cannot be resynchronised: start over on a new connection.
        context.close(promise: nil)
    }
}
