import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PagiConfig

/// Active health checks of a `proxy` route's upstreams (docs/proxy.md): every `interval`, a `GET`
/// of `path` to each; an answer within `timeout` with a status that `status` lists (2xx and 3xx
/// unless told) passes. `fall` failures in a row take the upstream out of the balancing, `rise`
/// passes in a row bring it back; each change is logged.
/// The checks run on an event loop of NIO's shared group and stop when the route's configuration is
/// gone (a reload compiled another): they hold its balancer weakly.
enum HealthChecks {
    static func start(for balancer: Balancer, _ health: ProxyOptions.Health) {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let interval = TimeAmount.nanoseconds(Int64(health.interval * 1e9))
        for (index, upstream) in balancer.upstreams.enumerated() {
            let state = CheckState(upstream: upstream, health: health)
            loop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: interval) { [weak balancer] task in
                guard balancer != nil else {
                    task.cancel()
                    return loop.makeSucceededVoidFuture()
                }
                return state.check(on: loop, index: index)
            }
        }
    }
}

/// One upstream's run of checks; used on its checks' event loop only.
private final class CheckState: @unchecked Sendable {
    let upstream: Upstream
    let health: ProxyOptions.Health
    var passes = 0
    var failures = 0
    static let logger = Logger(label: "pagi-serve.proxy")

    init(upstream: Upstream, health: ProxyOptions.Health) {
        self.upstream = upstream
        self.health = health
    }

    /// Set once the check under way has its outcome.
    private var decided = false

    func check(on loop: any EventLoop, index: Int) -> EventLoopFuture<Void> {
        let timeout = TimeAmount.nanoseconds(Int64(health.timeout * 1e9))
        let done = loop.makePromise(of: Void.self)
        decided = false
        var request = HTTPRequestHead(version: .http1_1, method: .GET, uri: upstream.basePath + health.path)
        request.headers = ["Host": upstream.serverName ?? upstream.host, "User-Agent": "pagi-serve health check", "Connection": "close"]
        let head = request
        UpstreamConnection.connect(to: upstream, on: loop, timeout: timeout).assumeIsolated().whenComplete { [self] result in
            let connection: UpstreamConnection
            switch result {
            case .success(let connected): connection = connected
            case .failure(let error):
                decide(passed: false, ProxyHandler.describe(error), done: done)
                return
            }
            let timer = loop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                connection.close()
                decide(passed: false, "no answer within \(health.timeout) s", done: done)
            }
            defer { connection.endRequest() }
            connection.send(head) { [self] event in
                switch event {
                case .head(let answer):
                    timer.cancel()
                    connection.close()
                    let status = Int(answer.status.code)
                    decide(passed: health.passes(status), "answered \(status)", done: done)
                case .failed(let error):
                    timer.cancel()
                    decide(passed: false, ProxyHandler.describe(error), done: done)
                case .body, .end:
                    break
                }
            }
        }
        return done.futureResult
    }

    private func decide(passed: Bool, _ outcome: String, done: EventLoopPromise<Void>) {
        guard !decided else { return }
        decided = true
        record(passed: passed, outcome)
        done.succeed()
    }

    private func record(passed: Bool, _ outcome: String) {
        if passed {
            failures = 0
            passes += 1
            if !upstream.healthy.load(ordering: .relaxed) && passes >= health.rise {
                upstream.healthy.store(true, ordering: .relaxed)
                Self.logger.notice("proxy: \(upstream.origin) is up again (health check: \(outcome), \(passes) in a row)")
            }
        } else {
            passes = 0
            failures += 1
            if upstream.healthy.load(ordering: .relaxed) && failures >= health.fall {
                upstream.healthy.store(false, ordering: .relaxed)
                Self.logger.error("proxy: \(upstream.origin) is down (health check of \(health.path): \(outcome), \(failures) in a row)")
            }
        }
    }
}
