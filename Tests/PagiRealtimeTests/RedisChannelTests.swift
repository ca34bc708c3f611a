import Foundation
import PagiTestSupport
import XCTest

/// `pubsub: redis://…` with a real redis-server (docs/configuration.md §6): servers share channels through
/// it, survive its restart, and never pretend a publish succeeded while it is down.
final class RedisChannelTests: XCTestCase {
    private var directories: [URL] = []
    private var servers: [TestServer] = []

    override func tearDown() {
        for server in servers { server.stop() }
        for directory in directories { try? FileManager.default.removeItem(at: directory) }
    }

    /// A pagi-serve instance with SSE and publish routes on the given pubsub.
    private func startServer(pubsub: String) throws -> TestServer {
        let directory = try makeTemporaryDirectory()
        directories.append(directory)
        let server = try TestServer(yaml: """
            pubsub: \(pubsub)
            server: {access_log: {to: off}}
            hosts:
              - names: [localhost]
                routes:
                  - path: /rooms/{room}/events
                    sse: {subscribe: "room:{{path.room}}", keepalive: 0}
                  - path: /rooms/{room}/messages
                    publish: "room:{{path.room}}"
            """, directory: directory)
        servers.append(server)
        return server
    }

    private func publish(_ text: String, on server: TestServer, room: String = "lobby") -> (status: Int, json: [String: Any], type: String?) {
        let response = RawClient.post(port: server.port, "/rooms/\(room)/messages", body: Array(text.utf8))
        let json = response.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] } ?? [:]
        return (response?.status ?? 0, json, response?.header("Content-Type"))
    }

    /// Subscriptions reach Redis asynchronously: publish until Redis counts a subscriber.
    private func publishUntilReceived(_ text: String, on server: TestServer, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let answer = publish(text, on: server)
            if answer.status == 202, (answer.json["receivers"] as? Int ?? 0) > 0 { return true }
            usleep(50_000)
        }
        return false
    }

    /// Reads events until one carries `data`.
    private func receive(_ data: String, on client: EventStreamClient) -> Bool {
        while let event = client.next() {
            if event.data == data { return true }
        }
        return false
    }

    func testTwoServersShareAChannelThroughRedis() throws {
        let redis = try RedisServerProcess()
        // A database number other than 0 exercises the SELECT handshake on both connections.
        let url = "redis://127.0.0.1:\(redis.port)/3"
        let publisher = try startServer(pubsub: url)
        let subscriberSide = try startServer(pubsub: url)
        let client = try EventStreamClient(port: subscriberSide.port, path: "/rooms/lobby/events")
        XCTAssertTrue(client.readUntil { $0.retry != nil })

        XCTAssertTrue(publishUntilReceived("warm-up", on: publisher), "the other server's subscription reaches Redis")
        let answer = publish("across servers", on: publisher)
        XCTAssertEqual(answer.status, 202)
        XCTAssertEqual(answer.json["receivers"] as? Int, 1, "Redis counts the one subscribed server")
        XCTAssertTrue(receive("across servers", on: client))
        XCTAssertEqual(publish("elsewhere", on: publisher, room: "other").json["receivers"] as? Int, 0)
    }

    func testRedisRestartMidStream() throws {
        let redis = try RedisServerProcess()
        let publisher = try startServer(pubsub: redis.url)
        let subscriberSide = try startServer(pubsub: redis.url)
        let client = try EventStreamClient(port: subscriberSide.port, path: "/rooms/lobby/events", timeout: 10)
        XCTAssertTrue(client.readUntil { $0.retry != nil })
        XCTAssertTrue(publishUntilReceived("before", on: publisher))
        XCTAssertTrue(receive("before", on: client))

        redis.stop()
        // Once the drop is noticed, a publish fails at once with 503: never a pretended success.
        var outage = publish("during", on: publisher)
        let deadline = Date().addingTimeInterval(5)
        while outage.status == 202, Date() < deadline {
            usleep(20_000)
            outage = publish("during", on: publisher)
        }
        XCTAssertEqual(outage.status, 503)
        XCTAssertEqual(outage.type, "application/problem+json")
        XCTAssertEqual(outage.json["status"] as? Int, 503)

        try redis.start()
        XCTAssertTrue(publishUntilReceived("after", on: publisher), "both servers reconnect and resubscribe")
        XCTAssertTrue(receive("after", on: client), "the open stream keeps receiving after the restart")
    }

    func testPublishWithoutRedisAnswers503() throws {
        _ = try RedisServerProcess.executable()
        let server = try startServer(pubsub: "redis://127.0.0.1:\(try freePort())/0")
        let answer = publish("nobody home", on: server)
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(answer.type, "application/problem+json")
        XCTAssertTrue((answer.json["detail"] as? String ?? "").contains("unreachable"), "\(answer.json)")
    }
}
