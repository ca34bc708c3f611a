import PagiConfig
import PagiCore
import Synchronization
import XCTest

/// Answers given later go through the engine's `Exchange` (docs/architecture.md): delays,
/// faults and protocol switches are made of it, and middleware edits reach whatever it is given.
final class ExchangeTests: XCTestCase {
    /// An engine's exchange that records what it was asked to do, and runs scheduled work at once.
    private final class RecordingExchange: Exchange {
        enum Call: Equatable {
            case send(status: Int, marker: String?, continuedPath: String?)
            case abort(Fault)
            case switchProtocols(status: Int, marker: String?)
            case schedule(Duration)
        }
        private let recorded = Mutex<[Call]>([])
        var calls: [Call] { recorded.withLock { $0 } }

        func send(_ response: Response, request: Request?) {
            recorded.withLock { $0.append(.send(status: response.status, marker: response.headers["X-Edited"], continuedPath: request?.path)) }
        }
        func abort(_ fault: Fault) { recorded.withLock { $0.append(.abort(fault)) } }
        func switchProtocols(_ response: Response, to upgrade: any ConnectionUpgrade) {
            recorded.withLock { $0.append(.switchProtocols(status: response.status, marker: response.headers["X-Edited"])) }
        }
        func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) {
            recorded.withLock { $0.append(.schedule(delay)) }
            work()
        }
    }

    private struct Mark: ResponseEdit {
        func apply(to response: inout Response) { response.headers.set("X-Edited", "yes") }
    }

    private struct NoUpgrade: ConnectionUpgrade {}

    /// Starts `response` as an engine would, on a recording exchange.
    private func run(_ response: Response) throws -> [RecordingExchange.Call] {
        let deferred = try XCTUnwrap(response.deferred, "an answer given later")
        let exchange = RecordingExchange()
        deferred.start(exchange)
        return exchange.calls
    }

    func testAResponseThatIsReadyIsNotDeferred() {
        XCTAssertNil(Response(status: 200).deferred)
    }

    func testADelayedAnswerIsScheduledThenSent() throws {
        XCTAssertEqual(try run(.delayed(Response(status: 204), by: .milliseconds(250))),
                       [.schedule(.milliseconds(250)), .send(status: 204, marker: nil, continuedPath: nil)])
    }

    func testAFaultAbortsTheExchangeAfterItsDelay() throws {
        XCTAssertEqual(try run(.fault(.reset)), [.abort(.reset)])
        XCTAssertEqual(try run(.fault(.malformed, after: .seconds(1))), [.schedule(.seconds(1)), .abort(.malformed)])
    }

    func testAProtocolSwitchHandsOverItsResponse() throws {
        XCTAssertEqual(try run(.switching(Response(status: 101), to: NoUpgrade())), [.switchProtocols(status: 101, marker: nil)])
    }

    func testAnEditAppliesAtOnceToAReadyResponse() {
        var response = Response(status: 200)
        response.apply(Mark())
        XCTAssertEqual(response.headers["X-Edited"], "yes")
    }

    func testAnEditReachesTheAnswerGivenLaterAndTheHeadOfAProtocolSwitch() throws {
        var delayed = Response.delayed(Response(status: 200), by: .seconds(1))
        delayed.apply(Mark())
        XCTAssertEqual(try run(delayed), [.schedule(.seconds(1)), .send(status: 200, marker: "yes", continuedPath: nil)])

        var switching = Response.switching(Response(status: 101), to: NoUpgrade())
        switching.apply(Mark())
        XCTAssertEqual(try run(switching), [.switchProtocols(status: 101, marker: "yes")])

        var fault = Response.fault(.empty)
        fault.apply(Mark())
        XCTAssertEqual(try run(fault), [.abort(.empty)], "a fault has no answer to edit")
    }

    func testAnAnswerThatIsItselfGivenLaterKeepsTheEditForIt() throws {
        // basic_auth continues the chain off the loop; the route behind it answers later again.
        var outer = Response.later { exchange in exchange.send(.delayed(Response(status: 202), by: .seconds(2))) }
        outer.apply(Mark())
        let handedOver = HandOver()
        try XCTUnwrap(outer.deferred).start(handedOver)
        // What the outer exchange was given is itself deferred: the engine starts it in turn.
        let inner = RecordingExchange()
        try XCTUnwrap(handedOver.response?.deferred).start(inner)
        XCTAssertEqual(inner.calls, [.schedule(.seconds(2)), .send(status: 202, marker: "yes", continuedPath: nil)])
    }

    func testTheChainContinuedLaterHandsBackTheRequestAsItLeftIt() throws {
        var request = Request(method: "GET", target: "/a", path: "/a", query: nil, headers: [:], host: "h")
        request.path = "/rewritten"
        let continued = request
        XCTAssertEqual(try run(.later { $0.send(Response(status: 200), request: continued) }),
                       [.send(status: 200, marker: nil, continuedPath: "/rewritten")])
    }

    /// Keeps the response it is sent, to start it again as the engine does with a deferred one.
    private final class HandOver: Exchange {
        private let kept = Mutex<Response?>(nil)
        var response: Response? { kept.withLock { $0 } }
        func send(_ response: Response, request: Request?) { kept.withLock { $0 = response } }
        func abort(_ fault: Fault) {}
        func switchProtocols(_ response: Response, to upgrade: any ConnectionUpgrade) {}
        func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) { work() }
    }
}
