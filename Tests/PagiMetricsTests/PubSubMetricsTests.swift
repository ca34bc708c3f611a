import PagiCore
import PagiMetrics
import Synchronization
import XCTest

/// The pub/sub counter: channel code wraps its broker in `CountingChannelBroker`, and every
/// message published through it shows up in `pagi_pubsub_messages_total`.
final class PubSubMetricsTests: XCTestCase {
    func testPublishedMessagesAreCounted() throws {
        let metrics = ServerMetrics()
        let broker = CountingChannelBroker(MemoryChannelBroker(), metrics: metrics)
        let received = Mutex(0)
        let subscription = broker.subscribe("news") { _ in received.withLock { $0 += 1 } }
        for text in ["one", "two", "three"] {
            broker.publish(ChannelMessage(text: text), to: "news") { result in
                XCTAssertEqual(try? result.get(), 1)
            }
        }
        subscription.cancel()
        XCTAssertEqual(received.withLock { $0 }, 3)
        let samples = try PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        XCTAssertEqual(samples.value("pagi_pubsub_messages_total", [:]), 3)
    }
}
