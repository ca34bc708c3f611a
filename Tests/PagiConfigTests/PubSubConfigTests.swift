import PagiConfig
import XCTest

final class PubSubConfigTests: XCTestCase {
    func testRedisURLsAreParsedAndActive() throws {
        let config = try loadConfig("pubsub: redis://:s3cret@cache.internal:6380/2\n" + minimalHosts)
        XCTAssertEqual(config.warnings, [], "pubsub: redis is supported: no warning")
        let endpoint = try XCTUnwrap(RedisEndpoint(url: config.pubsub))
        XCTAssertEqual(endpoint.host, "cache.internal")
        XCTAssertEqual(endpoint.port, 6380)
        XCTAssertEqual(endpoint.database, 2)
        XCTAssertEqual(endpoint.password, "s3cret")
        XCTAssertEqual(endpoint.handshake, [["AUTH", "s3cret"], ["SELECT", "2"]])
        XCTAssertEqual(endpoint.description, "redis://cache.internal:6380/2", "the password never shows")
        XCTAssertEqual(RedisEndpoint(url: "redis://127.0.0.1")?.port, 6379)
        XCTAssertEqual(RedisEndpoint(url: "redis://127.0.0.1")?.handshake, [])
    }

    func testBadRedisURLsAreErrors() {
        XCTAssertEqual(errors("pubsub: redis://127.0.0.1:6379/zero\n" + minimalHosts), [
            "config.yaml:1:9: error: expected 'memory' or a URL like redis://127.0.0.1:6379/0 for pubsub, got 'redis://127.0.0.1:6379/zero'",
        ])
        XCTAssertEqual(errors("pubsub: redis://\n" + minimalHosts).count, 1)
    }

    func testSSEAndPublishNoLongerWarn() throws {
        let config = try loadConfig("""
            hosts:
              - names: [example.com]
                routes:
                  - path: /events
                    sse: {subscribe: news}
                  - path: /news
                    publish: news
            """)
        XCTAssertEqual(config.warnings, [])
    }
}
