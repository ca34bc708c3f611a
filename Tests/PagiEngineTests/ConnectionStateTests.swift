import NIOCore
import NIOEmbedded
@testable import PagiEngine
import XCTest

/// The keep-alive and pipelining rules of an HTTP/1.1 connection, as plain data (`ConnectionState`)
/// and the head-wait deadline (`HeadWait`), without a channel.
final class ConnectionStateTests: XCTestCase {
    func testPersistenceFollowsVersionAndConnectionField() {
        XCTAssertTrue(ConnectionState.persists(versionMinor: 1, headers: []))
        XCTAssertFalse(ConnectionState.persists(versionMinor: 1, headers: [("Connection", "keep-alive, Close")]))
        XCTAssertFalse(ConnectionState.persists(versionMinor: 0, headers: []))
        XCTAssertTrue(ConnectionState.persists(versionMinor: 0, headers: [("connection", "Keep-Alive")]))
        XCTAssertFalse(ConnectionState.persists(versionMinor: 0, headers: [("Connection", "keep-alive"), ("Connection", "close")]))
    }

    func testAKeptAliveConnectionWaitsForTheNextRequestOnceItsAnswerIsOut() {
        var state = ConnectionState()
        state.requestStarted(persistent: true)
        state.requestFinished()
        XCTAssertTrue(state.staysOpen)
        state.responseSent()
        XCTAssertEqual(state.responseDone(requestInProgress: false), .awaitNextRequest)
    }

    func testConnectionCloseClosesAfterTheAnswerAndReadsNoFurtherRequest() {
        var state = ConnectionState()
        state.requestStarted(persistent: false)
        state.requestFinished()
        XCTAssertFalse(state.staysOpen)
        XCTAssertFalse(state.wantsInput(requestInProgress: false), "a pipelined request after `close` is not read")
        state.responseSent()
        XCTAssertEqual(state.responseDone(requestInProgress: false), .close)
    }

    func testPipelinedAnswersGoOutInOrder() {
        var state = ConnectionState()
        state.requestStarted(persistent: true)
        state.requestFinished()
        state.awaitingResponse = true
        XCTAssertFalse(state.mayParse, "the next request waits while this one's answer comes later")
        state.awaitingResponse = false
        state.responseSent()
        state.streaming = true
        XCTAssertFalse(state.mayParse, "and while its body streams")
        XCTAssertEqual(state.responseDone(requestInProgress: false), .awaitNextRequest)
        state.streaming = false
        XCTAssertTrue(state.mayParse)
    }

    func testTheNextRequestIsNotAwaitedWhileAnotherAnswerIsStillGoingOut() {
        var state = ConnectionState()
        state.responseSent()
        state.responseSent()
        XCTAssertEqual(state.responseDone(requestInProgress: false), .nothing)
        XCTAssertEqual(state.responseDone(requestInProgress: true), .nothing, "a request is being received")
    }

    func testAnErrorAnswerIsFollowedByALingeringClose() {
        var state = ConnectionState()
        state.requestStarted(persistent: true)
        state.fail()
        XCTAssertFalse(state.staysOpen)
        state.responseSent()
        XCTAssertEqual(state.responseDone(requestInProgress: false), .lingerAndClose)
    }

    func testAClosingConnectionStillReadsTheRestOfTheRequestItServes() {
        var state = ConnectionState()
        XCTAssertEqual(state.quiesce(requestInProgress: true), .drain)
        XCTAssertTrue(state.wantsInput(requestInProgress: true))
        XCTAssertFalse(state.wantsInput(requestInProgress: false))
    }

    func testShutdownClosesAnIdleConnectionAtOnceAndDrainsABusyOne() {
        var idle = ConnectionState()
        idle.requestStarted(persistent: true)
        idle.requestFinished()
        idle.responseSent()
        XCTAssertEqual(idle.responseDone(requestInProgress: false), .awaitNextRequest)
        XCTAssertEqual(idle.quiesce(requestInProgress: false), .closeNow, "its client retries on another connection")

        var answering = ConnectionState()
        answering.awaitingResponse = true
        XCTAssertEqual(answering.quiesce(requestInProgress: false), .drain)
        answering.awaitingResponse = false
        answering.responseSent()
        XCTAssertEqual(answering.responseDone(requestInProgress: false), .close, "no request after a shutdown began")
    }

    func testAConnectionAcceptedJustBeforeAShutdownStillGetsItsFirstRequestAnswered() {
        var fresh = ConnectionState()
        XCTAssertEqual(fresh.quiesce(requestInProgress: false), .awaitFirstRequest)
        XCTAssertTrue(fresh.wantsInput(requestInProgress: false), "its first request may be on its way")
        fresh.requestStarted(persistent: true)
        fresh.requestFinished()
        XCTAssertFalse(fresh.staysOpen, "answered with Connection: close")
        fresh.responseSent()
        XCTAssertEqual(fresh.responseDone(requestInProgress: false), .close)
    }

    // MARK: - HeadWait

    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testOneTimerTaskServesManyRequests() {
        var wait = HeadWait()
        XCTAssertTrue(wait.arm(at: start + .seconds(5), answer408: false), "no task yet")
        wait.disarm()
        XCTAssertFalse(wait.arm(at: start + .seconds(7), answer408: false), "the task scheduled fires earlier: it re-arms itself")
        XCTAssertEqual(wait.fired(now: start + .seconds(5)), .early(start + .seconds(7)))
        XCTAssertEqual(wait.fired(now: start + .seconds(7)), .expired(answer408: false))
        XCTAssertNil(wait.deadline)
    }

    func testAnEarlierDeadlineNeedsANewTask() {
        var wait = HeadWait()
        XCTAssertTrue(wait.arm(at: start + .seconds(7), answer408: false))
        XCTAssertTrue(wait.arm(at: start + .seconds(5), answer408: true))
        XCTAssertTrue(wait.isIdleWait == false, "waiting for the rest of a head, not idle")
        XCTAssertEqual(wait.fired(now: start + .seconds(5)), .expired(answer408: true))
    }

    func testADisarmedWaitDoesNothingWhenItsTaskFires() {
        var wait = HeadWait()
        _ = wait.arm(at: start + .seconds(5), answer408: false)
        XCTAssertTrue(wait.isIdleWait)
        wait.disarm()
        XCTAssertEqual(wait.fired(now: start + .seconds(5)), .disarmed)
        XCTAssertTrue(wait.arm(at: start + .seconds(9), answer408: false), "the task is gone: a new one is needed")
    }

    func testACancelledTaskIsNotCountedOn() {
        var wait = HeadWait()
        _ = wait.arm(at: start + .seconds(5), answer408: false)
        wait.taskCancelled()
        XCTAssertNil(wait.deadline)
        XCTAssertTrue(wait.arm(at: start + .seconds(9), answer408: false))
    }
}

/// `SlowReaderGuard` on an `EmbeddedChannel`: reads held while the peer does not read, the write
/// timeout with `advanceTime`.
final class SlowReaderGuardTests: XCTestCase {
    /// Counts the reads that pass the guard towards the socket.
    private final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = IOData
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    private var loop: EmbeddedEventLoop!
    private var channel: EmbeddedChannel!
    private var counter: ReadCounter!

    override func setUpWithError() throws {
        loop = EmbeddedEventLoop()
        counter = ReadCounter()
        channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(SlowReaderGuard(writeSeconds: 10))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func peerStopsReading(_ stopped: Bool) {
        channel.isWritable = !stopped
        channel.pipeline.fireChannelWritabilityChanged()
    }

    func testReadsPassWhileThePeerReads() {
        channel.read()
        XCTAssertEqual(counter.reads, 1)
    }

    func testReadsWaitWhileThePeerDoesNotReadAndResumeWhenItDoes() {
        peerStopsReading(true)
        channel.read()
        channel.read()
        XCTAssertEqual(counter.reads, 0, "no more requests read while our answers pile up")
        peerStopsReading(false)
        XCTAssertEqual(counter.reads, 1, "the held read passes once")
        XCTAssertTrue(channel.isActive)
    }

    func testAPeerThatTakesNothingForTheWriteTimeoutIsDropped() {
        peerStopsReading(true)
        loop.advanceTime(by: .milliseconds(9_999))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertFalse(channel.isActive)
    }

    func testAPeerThatReadsAgainInTimeIsKept() {
        peerStopsReading(true)
        loop.advanceTime(by: .seconds(9))
        peerStopsReading(false)
        loop.advanceTime(by: .seconds(5))
        XCTAssertTrue(channel.isActive)
    }

    func testLeavingPassesAHeldRead() throws {
        peerStopsReading(true)
        channel.read()
        let guardHandler = try channel.pipeline.syncOperations.handler(type: SlowReaderGuard.self)
        try channel.pipeline.syncOperations.removeHandler(guardHandler).wait()
        XCTAssertEqual(counter.reads, 1, "a protocol switch must not leave the connection unread")
        loop.advanceTime(by: .seconds(20))
        XCTAssertTrue(channel.isActive, "nor drop it by a timer of the guard")
    }
}
