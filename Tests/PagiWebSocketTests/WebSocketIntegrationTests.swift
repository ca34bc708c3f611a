import CompressNIO
import Foundation
import NIOCore
import PagiTestSupport
import XCTest

/// The `websocket` handler end to end over real sockets: handshake checks, echo, fragmentation,
/// control frames, close codes, limits, channels, permessage-deflate and shutdown.
final class WebSocketIntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [localhost]
                routes:
                  - path: /ws
                    websocket: {echo: true, max_message: 2MiB}
                  - path: /small
                    websocket: {echo: true, max_message: 1KiB}
                  - path: /plain
                    websocket: {echo: true, compression: false}
                  - path: /guarded
                    websocket: {echo: true, origins: ["https://good.example"], subprotocols: [chat.v2, chat.v1]}
                  - path: /chat/{room}
                    websocket: {broadcast: "chat:{{path.room}}"}
                  - path: /news
                    websocket: {subscribe: "chat:news"}
                  - path: /keepalive
                    websocket: {echo: true, ping_interval: 200ms}
                  - path: /idle
                    websocket: {echo: true, idle_timeout: 300ms}
                  - path: /firehose/in
                    websocket: {broadcast: firehose, max_message: 64KiB}
                  - path: /firehose/out
                    websocket: {subscribe: firehose, max_message: 64KiB}
            """, directory: dir)
    }

    override func tearDown() {
        server?.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func connect(_ path: String = "/ws", headers: [String: String] = [:]) throws -> WebSocketClient {
        try WebSocketClient(port: server.port, path: path, headers: headers)
    }

    // MARK: Handshake

    func testHandshakeAnswers101WithTheAcceptKeyOfRFC6455() throws {
        let client = try connect()
        XCTAssertEqual(client.status, 101)
        // The example key and accept value of RFC 6455 §1.3.
        XCTAssertEqual(client.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertEqual(client.header("Upgrade")?.lowercased(), "websocket")
    }

    func testBadOrMissingKeyIs400() throws {
        XCTAssertEqual(try connect(headers: ["Sec-WebSocket-Key": "c2hvcnQ="]).status, 400)
        XCTAssertEqual(try connect(headers: ["Sec-WebSocket-Key": ""]).status, 400)
        XCTAssertEqual(try connect(headers: ["Upgrade": ""]).status, 400)
    }

    func testOtherVersionIs426NamingVersion13() throws {
        let client = try connect(headers: ["Sec-WebSocket-Version": "12"])
        XCTAssertEqual(client.status, 426)
        XCTAssertEqual(client.header("Sec-WebSocket-Version"), "13")
    }

    func testOriginsOutsideTheListAre403() throws {
        XCTAssertEqual(try connect("/guarded", headers: ["Origin": "https://evil.example"]).status, 403)
        XCTAssertEqual(try connect("/guarded").status, 403)
        XCTAssertEqual(try connect("/guarded", headers: ["Origin": "https://good.example"]).status, 101)
    }

    func testFirstOfTheClientsSubprotocolsThatIsConfiguredIsChosen() throws {
        let client = try connect("/guarded", headers: ["Origin": "https://good.example",
                                                       "Sec-WebSocket-Protocol": "mqtt, chat.v1, chat.v2"])
        XCTAssertEqual(client.status, 101)
        XCTAssertEqual(client.header("Sec-WebSocket-Protocol"), "chat.v1")
        let none = try connect("/guarded", headers: ["Origin": "https://good.example", "Sec-WebSocket-Protocol": "mqtt"])
        XCTAssertEqual(none.status, 101)
        XCTAssertNil(none.header("Sec-WebSocket-Protocol"))
    }

    // MARK: Echo

    func testTextAndBinaryMessagesComeBackAsSent() throws {
        let client = try connect("/plain")
        client.send(text: "héllo wörld")
        let text = client.readMessageFrame()
        XCTAssertEqual(text?.opcode, 0x1)
        XCTAssertEqual(text?.text, "héllo wörld")
        let bytes = deterministicBytes(count: 300)
        client.send(binary: bytes)
        let binary = client.readMessageFrame()
        XCTAssertEqual(binary?.opcode, 0x2)
        XCTAssertEqual(binary?.payload, bytes)
    }

    func testOneMebibyteMessageRoundTrips() throws {
        let client = try connect("/plain")
        let bytes = deterministicBytes(count: 1 << 20)
        client.send(binary: bytes)
        XCTAssertEqual(client.readMessageFrame()?.payload, bytes)
    }

    func testFragmentedMessageWithInterleavedPingIsReassembled() throws {
        let client = try connect("/plain")
        client.send(WSFrame(fin: false, opcode: 0x1, payload: Array("frag".utf8)))
        client.send(WSFrame(opcode: 0x9, payload: Array("in between".utf8)))
        client.send(WSFrame(fin: false, opcode: 0x0, payload: Array("men".utf8)))
        client.send(WSFrame(fin: true, opcode: 0x0, payload: Array("ted".utf8)))
        let pong = client.readFrame()
        XCTAssertEqual(pong?.opcode, 0xA)
        XCTAssertEqual(pong?.text, "in between")
        let message = client.readMessageFrame()
        XCTAssertEqual(message?.text, "fragmented")
        XCTAssertEqual(message?.fin, true)
    }

    func testPingIsAnsweredWithPongCarryingItsPayload() throws {
        let client = try connect()
        client.send(WSFrame(opcode: 0x9, payload: [1, 2, 3]))
        let pong = client.readFrame()
        XCTAssertEqual(pong?.opcode, 0xA)
        XCTAssertEqual(pong?.payload, [1, 2, 3])
    }

    // MARK: Close codes

    func testCloseHandshakeEchoesTheCodeAndServerClosesTCP() throws {
        let client = try connect()
        client.sendClose(code: 4001)
        XCTAssertEqual(client.readFrame()?.closeCode, 4001)
        XCTAssertTrue(client.waitForTCPClose())
    }

    func testInvalidUTF8InTextIsClosedWith1007() throws {
        let client = try connect()
        client.send(WSFrame(opcode: 0x1, payload: [0x68, 0xC3, 0x28]))
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1007)
    }

    func testInvalidUTF8SplitAcrossFragmentsIsClosedWith1007() throws {
        let client = try connect()
        // U+20AC split across frames is fine; a surrogate (ED A0 80) is not, even split.
        client.send(WSFrame(fin: false, opcode: 0x1, payload: [0xE2, 0x82]))
        client.send(WSFrame(fin: true, opcode: 0x0, payload: [0xAC]))
        XCTAssertEqual(client.readMessageFrame()?.text, "€")
        client.send(WSFrame(fin: false, opcode: 0x1, payload: [0x61, 0xED]))
        client.send(WSFrame(fin: true, opcode: 0x0, payload: [0xA0, 0x80]))
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1007)
    }

    func testMessageOverMaxMessageIsClosedWith1009() throws {
        let client = try connect("/small")
        client.send(binary: [UInt8](repeating: 7, count: 1025))
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1009)
    }

    func testFragmentsAddingUpOverMaxMessageAreClosedWith1009() throws {
        let client = try connect("/small")
        client.send(WSFrame(fin: false, opcode: 0x2, payload: [UInt8](repeating: 1, count: 600)))
        client.send(WSFrame(fin: true, opcode: 0x0, payload: [UInt8](repeating: 1, count: 600)))
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1009)
    }

    func testUnmaskedFramesReservedBitsAndOpcodesAreClosedWith1002() throws {
        let unmasked = try connect()
        unmasked.send(WSFrame(opcode: 0x1, payload: Array("hi".utf8)), masked: false)
        XCTAssertEqual(unmasked.readMessageFrame()?.closeCode, 1002)
        let reservedOpcode = try connect()
        reservedOpcode.send(WSFrame(opcode: 0x3, payload: []))
        XCTAssertEqual(reservedOpcode.readMessageFrame()?.closeCode, 1002)
        let rsv1WithoutDeflate = try connect("/plain")
        rsv1WithoutDeflate.send(WSFrame(rsv1: true, opcode: 0x1, payload: Array("hi".utf8)))
        XCTAssertEqual(rsv1WithoutDeflate.readMessageFrame()?.closeCode, 1002)
    }

    // MARK: Timers

    func testServerPingsAndClosesAPeerThatNeverAnswers() throws {
        let client = try connect("/keepalive")
        XCTAssertEqual(client.readFrame()?.opcode, 0x9, "a ping after ping_interval")
        // No pong: by the next interval the peer counts as gone.
        XCTAssertEqual(client.readFrame()?.closeCode, 1011)
    }

    func testAnsweredPingsKeepTheConnectionOpen() throws {
        let client = try connect("/keepalive")
        for _ in 0..<3 {
            let ping = try XCTUnwrap(client.readFrame())
            XCTAssertEqual(ping.opcode, 0x9)
            client.send(WSFrame(opcode: 0xA, payload: ping.payload))
        }
        client.send(text: "still open")
        XCTAssertEqual(client.readMessageFrame()?.text, "still open")
    }

    func testIdleConnectionIsClosedAfterIdleTimeout() throws {
        let client = try connect("/idle")
        client.send(text: "one")
        XCTAssertEqual(client.readMessageFrame()?.text, "one")
        let started = Date()
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1001)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.25)
    }

    // MARK: Channels

    func testBroadcastReachesTheRoomOnlyAndEveryMember() throws {
        let alice = try connect("/chat/a")
        let bob = try connect("/chat/a")
        let carol = try connect("/chat/b")
        alice.send(text: "hello room a")
        XCTAssertEqual(bob.readMessageFrame()?.text, "hello room a")
        XCTAssertEqual(alice.readMessageFrame()?.text, "hello room a")
        carol.send(text: "hello room b")
        // Carol's first message is her own room's: room a's never reached her.
        XCTAssertEqual(carol.readMessageFrame()?.text, "hello room b")
        bob.send(binary: [1, 2, 3])
        let binary = alice.readMessageFrame()
        XCTAssertEqual(binary?.opcode, 0x2)
        XCTAssertEqual(binary?.payload, [1, 2, 3])
    }

    func testSubscriberReceivesChannelMessagesAndMayNotSend() throws {
        let listener = try connect("/news")
        let publisher = try connect("/chat/news")
        publisher.send(text: "breaking")
        XCTAssertEqual(listener.readMessageFrame()?.text, "breaking")
        listener.send(text: "hello?")
        XCTAssertEqual(listener.readMessageFrame()?.closeCode, 1003)
    }

    func testMemberThatDoesNotReadIsDroppedWhileOthersKeepBeingServed() throws {
        let slow = try connect("/firehose/out")
        let publisher = try connect("/firehose/in")
        let message = deterministicBytes(count: 60 * 1024)
        let count = 400  // 24 MB: far more than the socket buffers and the 1 MiB send buffer hold
        let echoes = DispatchSemaphore(value: 0)
        let received = ReceivedCount()
        Thread.detachNewThread {
            // The publisher is a member too: it reads its own messages back, so it is never slow.
            while received.value < count, let frame = publisher.readMessageFrame(), frame.opcode == 0x2 { received.increment() }
            echoes.signal()
        }
        for _ in 0..<count { publisher.send(binary: message) }
        XCTAssertEqual(echoes.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(received.value, count, "the publisher got every message")
        var delivered = 0
        while let frame = slow.readMessageFrame(), frame.opcode == 0x2 { delivered += 1 }
        XCTAssertLessThan(delivered, count, "the slow member was cut off instead of buffered for")
        XCTAssertTrue(slow.waitForTCPClose())
    }

    // MARK: permessage-deflate

    func testDeflateIsNegotiatedAndCompressedMessagesRoundTrip() throws {
        let client = try connect(headers: ["Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"])
        XCTAssertEqual(client.header("Sec-WebSocket-Extensions"), "permessage-deflate")
        let text = String(repeating: "compress me, compress me again. ", count: 200)
        var compressor = try Deflater()
        let compressed = try compressor.compress(Array(text.utf8))
        XCTAssertLessThan(compressed.count, text.utf8.count / 4)
        client.send(WSFrame(rsv1: true, opcode: 0x1, payload: compressed))
        let echoed = try XCTUnwrap(client.readMessageFrame())
        XCTAssertTrue(echoed.rsv1, "the echo is compressed too")
        XCTAssertLessThan(echoed.payload.count, text.utf8.count / 4)
        var inflater = try Inflater()
        XCTAssertEqual(String(decoding: try inflater.decompress(echoed.payload), as: UTF8.self), text)
    }

    func testBytesAfterTheEndOfADeflateStreamCloseWith1007() throws {
        let client = try connect(headers: ["Sec-WebSocket-Extensions": "permessage-deflate"])
        XCTAssertEqual(client.header("Sec-WebSocket-Extensions"), "permessage-deflate")
        // A stored block marked final ("hello"), then bytes that no inflate call will ever consume.
        let finalBlock: [UInt8] = [0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hello".utf8) + Array("garbage".utf8)
        client.send(WSFrame(rsv1: true, opcode: 0x1, payload: finalBlock))
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1007, "refused, not inflated forever")
        let other = try connect()
        other.send(text: "still served")
        XCTAssertEqual(other.readMessageFrame()?.text, "still served")
    }

    func testNoContextTakeoverAndWindowBitsAreHonouredWhenOffered() throws {
        let client = try connect(headers: ["Sec-WebSocket-Extensions":
            "permessage-deflate; server_max_window_bits=20, permessage-deflate; server_no_context_takeover; server_max_window_bits=10"])
        XCTAssertEqual(client.header("Sec-WebSocket-Extensions"),
                       "permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
        let plain = try connect("/plain", headers: ["Sec-WebSocket-Extensions": "permessage-deflate"])
        XCTAssertNil(plain.header("Sec-WebSocket-Extensions"))
    }

    // MARK: Shutdown

    func testServerShutdownClosesWith1001() throws {
        let client = try connect()
        client.send(text: "still here")
        XCTAssertEqual(client.readMessageFrame()?.text, "still here")
        let stopped = try XCTUnwrap(server).stopInBackground()
        XCTAssertEqual(client.readMessageFrame()?.closeCode, 1001)
        client.sendClose(code: 1001)
        XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success, "shutdown finished once the client answered")
    }

    /// A connection accepted just before the shutdown whose first request is a WebSocket upgrade:
    /// the new WebSocket is closed with 1001 at once, rather than left open until the shutdown
    /// timeout.
    func testAWebSocketOpenedDuringTheShutdownIsClosedWith1001() throws {
        let client = try RawClient(port: server.port)
        // Accepted by the server (not still in the listen queue, which the shutdown closes).
        Thread.sleep(forTimeInterval: 0.2)
        let stopped = try XCTUnwrap(server).stopInBackground()
        Thread.sleep(forTimeInterval: 0.2)
        client.send("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let answer = client.readToEnd()
        XCTAssertTrue(answer.starts(with: Array("HTTP/1.1 101".utf8)), String(decoding: answer, as: UTF8.self))
        // An unmasked close frame (FIN + opcode 8, a short payload) whose payload starts with 1001.
        let closesWith1001 = answer.indices.dropLast(3).contains { answer[$0] == 0x88 && answer[$0 + 1] < 126 && answer[$0 + 2] == 0x03 && answer[$0 + 3] == 0xE9 }
        XCTAssertTrue(closesWith1001, "no close 1001 in \(answer)")
        XCTAssertEqual(stopped.wait(timeout: .now() + 5), .success, "the shutdown did not wait for the WebSocket")
    }
}

/// A counter shared by the test thread and a reader thread.
private final class ReceivedCount: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}

/// Raw deflate for the test client (RFC 7692 §7.2.1: sync flush, last four bytes removed).
private struct Deflater {
    let stream: ZlibCompressor
    init() throws { stream = try ZlibCompressor(algorithm: .deflate) }
    mutating func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        var output = ByteBuffer()
        output.reserveCapacity(stream.maxSize(from: input))
        try stream.deflate(from: &input, to: &output, flush: .sync)
        return Array(output.readableBytesView.dropLast(4))
    }
}

private struct Inflater {
    let stream: ZlibDecompressor
    init() throws { stream = try ZlibDecompressor(algorithm: .deflate) }
    mutating func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes + [0, 0, 0xFF, 0xFF])
        var output = ByteBuffer()
        output.reserveCapacity(1 << 20)
        try stream.inflate(from: &input, to: &output)
        return Array(output.readableBytesView)
    }
}
