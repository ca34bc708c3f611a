import Logging
import NIOCore
import NIOEmbedded
import PagiBuiltins
import PagiConfig
import PagiCore
@testable import PagiEngine
import XCTest

/// The connection's timers and pipelining on an `EmbeddedChannel`, with the loop's clock moved by
/// `advanceTime` instead of real sleeps (docs/configuration.md §4, `timeouts`).
final class ConnectionTimerTests: XCTestCase {
    private var loop: EmbeddedEventLoop!
    private var channel: EmbeddedChannel!

    override func setUpWithError() throws {
        var config = try ConfigLoader.load(yaml: """
            server:
              access_log: {to: off}
              timeouts: {header: 5s, body: 3s, idle: 7s}
            hosts:
              - names: [localhost]
                routes:
                  - {path: /a, respond: {body: alpha}}
                  - {path: /b, respond: {body: beta}}
                  - {path: /late, respond: {body: late, delay: 2s}}
            """, fileName: "timers.yaml", environment: [:])
        config.server.listen = []
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let context = ServerContext(tables: RoutingTableBox(try Builtins.compile(config)), server: config.server,
                                    accessLog: nil, logger: logger)
        loop = EmbeddedEventLoop()
        channel = EmbeddedChannel(handler: HTTPConnectionHandler(server: context), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything written to the peer so far, as text.
    private func written() throws -> String {
        var text = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            text += String(buffer: buffer)
        }
        return text
    }

    func testIdleKeepAliveConnectionClosesQuietlyAfterTheIdleTimeout() throws {
        try send("GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertTrue(try written().hasSuffix("alpha"))
        loop.advanceTime(by: .milliseconds(6_999))
        XCTAssertTrue(channel.isActive, "idle for less than timeouts.idle")
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try written(), "", "an idle close says nothing")
    }

    func testAConnectionThatNeverSendsIsClosedAfterTheHeaderTimeout() throws {
        loop.advanceTime(by: .milliseconds(4_999))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try written(), "")
    }

    func testAPartialHeadIsAnswered408() throws {
        loop.advanceTime(by: .seconds(1))
        try send("GET /a HTTP/1.1\r\nHost: loc")
        loop.advanceTime(by: .milliseconds(4_999))
        XCTAssertEqual(try written(), "", "the head still has time")
        loop.advanceTime(by: .milliseconds(2))
        let answer = try written()
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), answer)
        XCTAssertTrue(answer.contains("Connection: close\r\n"), answer)
    }

    func testABodyThatStopsArrivingIsAnswered408() throws {
        try send("POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345")
        loop.advanceTime(by: .milliseconds(2_999))
        XCTAssertEqual(try written(), "")
        try send("678")
        loop.advanceTime(by: .milliseconds(2_999))
        XCTAssertEqual(try written(), "", "each piece of the body restarts timeouts.body")
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertTrue(try written().hasPrefix("HTTP/1.1 408 "))
    }

    /// A delayed answer holds back the pipelined request behind it, and the idle clock starts
    /// only once the last answer is out.
    func testPipelinedAnswersStayInOrderBehindADelayedOne() throws {
        try send("GET /late HTTP/1.1\r\nHost: localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(try written(), "")
        loop.advanceTime(by: .milliseconds(1_999))
        XCTAssertEqual(try written(), "")
        loop.advanceTime(by: .milliseconds(1))
        let answers = try written()
        let late = try XCTUnwrap(answers.range(of: "late"))
        let beta = try XCTUnwrap(answers.range(of: "beta"))
        XCTAssertLessThan(late.lowerBound, beta.lowerBound)
        loop.advanceTime(by: .milliseconds(6_999))
        XCTAssertTrue(channel.isActive, "idle time counts from the last answer, not from the first request")
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertFalse(channel.isActive)
    }
}
