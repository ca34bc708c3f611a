import Atomics
import NIOCore
import PagiConfig
import PagiCore

/// The `Exchange` of a request being answered — an HTTP/1.1 connection's current request or an
/// HTTP/2 stream — for answers given later (docs/architecture.md): whichever thread ends it, the
/// end is carried out once, on the event loop of its channel, by the handler's `finish`.
final class LoopExchange: Exchange {
    enum Outcome: Sendable {
        case response(Response, Request?)
        case fault(Fault)
        case switchProtocols(Response, any ConnectionUpgrade)
    }

    private let loop: any EventLoop
    private let finish: NIOLoopBound<(Outcome) -> Void>
    private let timer: NIOLoopBound<(TimeAmount, @escaping @Sendable () -> Void) -> Void>
    private let ended = ManagedAtomic(false)

    /// `timer` schedules work on the loop, cancelled if the connection closes first.
    init(loop: any EventLoop, finish: NIOLoopBound<(Outcome) -> Void>,
         timer: NIOLoopBound<(TimeAmount, @escaping @Sendable () -> Void) -> Void>) {
        self.loop = loop
        self.finish = finish
        self.timer = timer
    }

    func send(_ response: Response, request: Request?) { end(.response(response, request)) }
    func abort(_ fault: Fault) { end(.fault(fault)) }
    func switchProtocols(_ response: Response, to upgrade: any ConnectionUpgrade) { end(.switchProtocols(response, upgrade)) }

    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) {
        let amount = TimeAmount(delay)
        if loop.inEventLoop {
            timer.value(amount, work)
        } else {
            loop.execute { [timer] in timer.value(amount, work) }
        }
    }

    /// Always a hop through the loop, even from it: an answer given while `Response.later`'s
    /// `start` still runs would otherwise re-enter the connection handler in the middle of a request.
    private func end(_ outcome: Outcome) {
        guard ended.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        loop.execute { [finish] in finish.value(outcome) }
    }
}
