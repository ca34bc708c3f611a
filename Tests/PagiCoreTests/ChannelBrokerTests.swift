import PagiConfig
@testable import PagiCore
import Synchronization
import XCTest

final class ChannelBrokerTests: XCTestCase {
    /// Collects what a receiver got.
    private final class Inbox: Sendable {
        private let messages = Mutex<[String]>([])
        var texts: [String] { messages.withLock { $0 } }
        func receive(_ message: ChannelMessage) { messages.withLock { $0.append(String(decoding: message.data, as: UTF8.self)) } }
    }

    private func publish(_ text: String, to channel: String, on broker: MemoryChannelBroker) -> Int? {
        let result = Mutex<Int?>(nil)
        broker.publish(ChannelMessage(text: text), to: channel) { outcome in result.withLock { $0 = try? outcome.get() } }
        return result.withLock { $0 }
    }

    func testPublishReachesEverySubscriberOfTheChannelOnly() {
        let broker = MemoryChannelBroker()
        let a = Inbox(), b = Inbox(), other = Inbox()
        let subscriptions = [broker.subscribe("news", a.receive), broker.subscribe("news", b.receive), broker.subscribe("sport", other.receive)]
        XCTAssertEqual(publish("hello", to: "news", on: broker), 2)
        XCTAssertEqual(a.texts, ["hello"])
        XCTAssertEqual(b.texts, ["hello"])
        XCTAssertEqual(other.texts, [])
        XCTAssertEqual(publish("nobody", to: "weather", on: broker), 0)
        withExtendedLifetime(subscriptions) {}
    }

    func testCancelledOrReleasedSubscriptionsStopReceiving() {
        let broker = MemoryChannelBroker()
        let kept = Inbox(), cancelled = Inbox(), released = Inbox()
        let keep = broker.subscribe("news", kept.receive)
        broker.subscribe("news", cancelled.receive).cancel()
        _ = broker.subscribe("news", released.receive)
        XCTAssertEqual(publish("one", to: "news", on: broker), 1)
        XCTAssertEqual(kept.texts, ["one"])
        XCTAssertEqual(cancelled.texts + released.texts, [])
        keep.cancel()
        XCTAssertEqual(publish("two", to: "news", on: broker), 0)
    }

    func testFanOutSubscriptionCountsItsReceivers() {
        let broker = MemoryChannelBroker()
        let hub = Inbox(), single = Inbox()
        let clients = Mutex(3)
        let subscriptions = [broker.subscribe("news", receivers: { clients.withLock { $0 } }, hub.receive),
                             broker.subscribe("news", single.receive)]
        XCTAssertEqual(publish("x", to: "news", on: broker), 4)
        clients.withLock { $0 = 0 }
        XCTAssertEqual(publish("y", to: "news", on: broker), 1)
        XCTAssertEqual(hub.texts, ["x", "y"], "a hub with no clients still hears the channel (for replay)")
        withExtendedLifetime(subscriptions) {}
    }

    func testChannelNameTemplates() throws {
        var request = Request(method: "GET", target: "/rooms/a%20b?topic=x", path: "/rooms/a b", query: "topic=x",
                              headers: HeaderFields(), host: "example.com")
        request.params = ["room": "a b"]
        let name = try ChannelName("chat:{{path.room}}:{{ query.topic }}@{{host}}", pattern: "/rooms/{room}")
        XCTAssertEqual(name.resolve(for: request), "chat:a b:x@example.com")
        XCTAssertFalse(name.isFixed)
        XCTAssertTrue(try ChannelName("news", pattern: "/").isFixed)
        XCTAssertThrowsError(try ChannelName("chat:{{path.other}}", pattern: "/rooms/{room}"))
        XCTAssertThrowsError(try ChannelName("chat:{{path.room", pattern: "/rooms/{room}"))
        XCTAssertThrowsError(try ChannelName("{{now}}", pattern: "/"))
        XCTAssertThrowsError(try ChannelName("", pattern: "/"))
    }
}
