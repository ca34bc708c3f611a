import Foundation
import PagiTestSupport
import XCTest

/// `sse` and `publish` against the real server, with the in-memory broker (docs/configuration.md §9.6, §5.7).
final class SSEIntegrationTests: XCTestCase {
    private var directory: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDown() {
        server?.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func start(_ routes: String) throws {
        server = try TestServer(yaml: """
            server: {access_log: {to: off}}
            hosts:
              - names: [localhost]
                routes:
            \(routes)
            """, directory: directory)
    }

    private static let newsRoutes = """
              - path: /events
                sse: {subscribe: news, retry: 2500ms, keepalive: 0}
              - path: /publish
                publish: news
        """

    /// POSTs `body`; returns status and the parsed JSON answer.
    private func publish(_ body: String, to path: String = "/publish") -> (status: Int, json: [String: Any]) {
        let response = RawClient.post(port: server.port, path, body: Array(body.utf8))
        let json = response.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] } ?? [:]
        return (response?.status ?? 0, json)
    }

    func testStreamHeadAndFraming() throws {
        try start(Self.newsRoutes)
        let client = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertEqual(client.status, 200)
        XCTAssertEqual(client.header("Content-Type"), "text/event-stream; charset=utf-8")
        XCTAssertEqual(client.header("Cache-Control"), "no-store")
        XCTAssertEqual(client.header("X-Accel-Buffering"), "no")
        XCTAssertEqual(client.header("Transfer-Encoding"), "chunked")
        XCTAssertTrue(client.readUntil { $0.retry != nil })
        XCTAssertEqual(client.retry, 2500)

        XCTAssertEqual(publish("one\ntwo\r\nthree\rfour").status, 202)
        XCTAssertEqual(publish("single").status, 202)
        let events = client.next(2)
        XCTAssertEqual(events.map(\.data), ["one\ntwo\nthree\nfour", "single"])
        XCTAssertNil(events[0].event)
        let ids = events.compactMap { $0.id.flatMap(UInt64.init) }
        XCTAssertEqual(ids.count, 2, "every event carries a numeric id")
        XCTAssertEqual(ids[1], ids[0] + 1)
        XCTAssertTrue(client.receivedText.hasPrefix("retry: 2500\n\n"), client.receivedText)
        XCTAssertTrue(client.receivedText.contains("id: \(ids[0])\ndata: one\ndata: two\ndata: three\ndata: four\n\n"), client.receivedText)
        XCTAssertEqual(client.retry, 2500, "retry is sent once, at the start")
    }

    func testKeepaliveCommentsArrive() throws {
        try start("""
              - path: /events
                sse: {subscribe: quiet, keepalive: 150ms}
        """)
        let client = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertTrue(client.readUntil { $0.comments.count >= 2 })
        XCTAssertEqual(client.comments.prefix(2), ["keepalive", "keepalive"])
        XCTAssertEqual(client.retry, 3000, "the default retry is 3s")
    }

    func testTickerEventsWithTemplatedData() throws {
        try start("""
              - path: /clock/{name}
                sse: {ticker: {every: 100ms, data: "tick {{count}} for {{path.name}} <{{query.tz}}> at {{now}}", event: tick}}
        """)
        let client = try EventStreamClient(port: server.port, path: "/clock/bob%20b?tz=UTC")
        let events = client.next(3)
        XCTAssertEqual(events.map(\.event), ["tick", "tick", "tick"])
        XCTAssertEqual(events.map(\.id), ["1", "2", "3"])
        for (index, event) in events.enumerated() {
            XCTAssertTrue(event.data.hasPrefix("tick \(index + 1) for bob b <UTC> at 20"), event.data)
            let now = String(event.data.split(separator: " ").last ?? "")
            XCTAssertNotNil(try? Date(now, strategy: .iso8601), "now is RFC 3339: \(now)")
        }
        // A resuming client goes on counting from its Last-Event-ID.
        let resumed = try EventStreamClient(port: server.port, path: "/clock/x", headers: ["Last-Event-ID": "41"])
        XCTAssertEqual(resumed.next()?.id, "42")
    }

    func testLastEventIDReplaysExactlyTheMissedEvents() throws {
        try start("""
              - path: /events
                sse: {subscribe: news, replay: 10, keepalive: 0}
              - path: /publish
                publish: news
        """)
        let lastID = try {
            // This client goes away (its socket closes) at the end of the closure.
            let first = try EventStreamClient(port: server.port, path: "/events")
            XCTAssertTrue(first.readUntil { $0.retry != nil })
            _ = publish("m1")
            _ = publish("m2")
            let seen = first.next(2)
            XCTAssertEqual(seen.map(\.data), ["m1", "m2"])
            return try XCTUnwrap(seen.last?.id)
        }()

        for text in ["m3", "m4", "m5"] { XCTAssertEqual(publish(text).status, 202) }
        let resumed = try EventStreamClient(port: server.port, path: "/events", headers: ["Last-Event-ID": lastID])
        let missed = resumed.next(3)
        XCTAssertEqual(missed.map(\.data), ["m3", "m4", "m5"])
        XCTAssertEqual(missed.first?.id.flatMap(UInt64.init), UInt64(lastID).map { $0 + 1 })
        _ = publish("m6")
        XCTAssertEqual(resumed.next()?.data, "m6", "then live events, nothing replayed twice")

        // A newcomer without Last-Event-ID gets no history; an old id gets at most `replay` events.
        let fresh = try EventStreamClient(port: server.port, path: "/events", timeout: 0.5)
        XCTAssertTrue(fresh.readUntil { $0.retry != nil })
        XCTAssertNil(fresh.next())
        let old = try EventStreamClient(port: server.port, path: "/events", headers: ["Last-Event-ID": "0"], timeout: 0.5)
        XCTAssertEqual(old.next(10).map(\.data), ["m1", "m2", "m3", "m4", "m5", "m6"])
    }

    func testPublishAnswersReceiversCount() throws {
        try start(Self.newsRoutes)
        let nobody = publish("hello")
        XCTAssertEqual(nobody.status, 202)
        XCTAssertEqual(nobody.json["channel"] as? String, "news")
        XCTAssertEqual(nobody.json["receivers"] as? Int, 0)

        let a = try EventStreamClient(port: server.port, path: "/events")
        let b = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertTrue(a.readUntil { $0.retry != nil })
        XCTAssertTrue(b.readUntil { $0.retry != nil })
        let two = publish("hello both")
        XCTAssertEqual(two.status, 202)
        XCTAssertEqual(two.json["receivers"] as? Int, 2)
        XCTAssertEqual(a.next()?.data, "hello both")
        XCTAssertEqual(b.next()?.data, "hello both")

        let get = RawClient.get(port: server.port, "/publish")
        XCTAssertEqual(get?.status, 405)
        XCTAssertEqual(get?.header("Allow"), "POST")
    }

    func testTemplatedChannelsAreIsolated() throws {
        try start("""
              - path: /rooms/{room}/events
                sse: {subscribe: "chat:{{path.room}}", keepalive: 0}
              - path: /rooms/{room}/messages
                publish: "chat:{{path.room}}"
        """)
        let kitchen = try EventStreamClient(port: server.port, path: "/rooms/kitchen/events")
        let garden = try EventStreamClient(port: server.port, path: "/rooms/garden/events")
        XCTAssertTrue(kitchen.readUntil { $0.retry != nil })
        XCTAssertTrue(garden.readUntil { $0.retry != nil })

        let toKitchen = publish("for the kitchen", to: "/rooms/kitchen/messages")
        XCTAssertEqual(toKitchen.json["channel"] as? String, "chat:kitchen")
        XCTAssertEqual(toKitchen.json["receivers"] as? Int, 1)
        XCTAssertEqual(publish("for the garden", to: "/rooms/garden/messages").json["receivers"] as? Int, 1)
        XCTAssertEqual(publish("for nobody", to: "/rooms/attic/messages").json["receivers"] as? Int, 0)
        XCTAssertEqual(kitchen.next()?.data, "for the kitchen")
        XCTAssertEqual(garden.next()?.data, "for the garden", "the garden never saw the kitchen's message")
    }

    func testBinaryMessagesTravelAsBase64() throws {
        try start(Self.newsRoutes)
        let client = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertTrue(client.readUntil { $0.retry != nil })
        let bytes: [UInt8] = [0xFF, 0x00, 0xFE, 0x0A]
        let response = RawClient.post(port: server.port, "/publish", body: bytes)
        XCTAssertEqual(response?.status, 202)
        let event = client.next()
        XCTAssertEqual(event?.event, "binary")
        XCTAssertEqual(event?.data, Data(bytes).base64EncodedString())
    }

    func testSlowReaderIsDroppedWithoutServerMemoryGrowing() throws {
        try start("""
              - path: /events
                sse: {subscribe: firehose, replay: 0, keepalive: 0}
              - path: /publish
                publish: firehose
        """)
        let sleeper = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertTrue(sleeper.readUntil { $0.retry != nil })
        let message = String(repeating: "x", count: 64 * 1024)
        let before = residentBytes()
        let publisher = try RawClient(port: server.port)
        var delivered = 0
        for _ in 0..<1024 {
            // 64 MiB in all, far past what the kernel's socket buffers can hold for a client that reads nothing.
            publisher.send("POST /publish HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(message.utf8.count)\r\n\r\n\(message)")
            guard let answer = publisher.readResponse(), answer.status == 202 else { break }
            delivered += (try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])?["receivers"] as? Int ?? 0
        }
        let growth = residentBytes() - before
        XCTAssertLessThan(growth, 24 << 20, "the server must not queue 64 MiB for a client that reads nothing")
        XCTAssertTrue(sleeper.waitForEnd(), "the slow reader is dropped")
        XCTAssertLessThan(sleeper.received.count, 32 << 20)
        XCTAssertEqual(publish("still alive").status, 202, "the server keeps serving")
        XCTAssertGreaterThan(delivered, 0)
    }

    /// This process's resident set (the server runs inside it).
    private func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = Int(statm.split(separator: " ")[1])
        else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testServerShutdownEndsOpenStreamsCleanly() throws {
        try start(Self.newsRoutes)
        let client = try EventStreamClient(port: server.port, path: "/events")
        XCTAssertTrue(client.readUntil { $0.retry != nil })
        server.stop()
        XCTAssertTrue(client.waitForEnd())
        XCTAssertTrue(client.streamFinished, "the stream ends with the last chunk, not a cut connection")
    }

    /// A connection accepted just before the shutdown whose first request opens a stream: the
    /// stream ends at once, cleanly, rather than running until timeouts.shutdown cuts it.
    func testAStreamOpenedDuringTheShutdownEndsCleanlyAtOnce() throws {
        try start(Self.newsRoutes)
        let client = try RawClient(port: server.port)
        // Accepted by the server (not still in the listen queue, which the shutdown closes).
        Thread.sleep(forTimeInterval: 0.2)
        let stopped = try XCTUnwrap(server).stopInBackground()
        Thread.sleep(forTimeInterval: 0.2)
        client.send("GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        let answer = String(decoding: client.readToEnd(), as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
        XCTAssertTrue(answer.hasSuffix("0\r\n\r\n"), "ended with the last chunk: \(answer)")
        XCTAssertEqual(stopped.wait(timeout: .now() + 5), .success, "the shutdown did not wait for the stream")
    }

    func testConfigMistakesInChannelNamesAreReported() throws {
        XCTAssertThrowsError(try start("""
              - path: /rooms/{room}/events
                sse: {subscribe: "chat:{{path.rooom}}"}
        """)) { error in
            XCTAssertTrue("\(error)".contains("config.yaml:6:9: error: channel name 'chat:{{path.rooom}}' uses {{path.rooom}} but the route '/rooms/{room}/events' has no {rooom}"), "\(error)")
        }
    }
}
