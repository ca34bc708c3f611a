import PagiConfig
import PagiCore
@testable import PagiMiddleware
import XCTest

/// The parts of the middleware that are plain logic, without a server (MiddlewareIntegrationTests
/// drives each one through real sockets).
final class RateLimitBucketTests: XCTestCase {
    func testBurstThenRefillAtTheRate() {
        let buckets = TokenBuckets(perSecond: 2, burst: 3)
        let start = ContinuousClock.now
        XCTAssertNil(buckets.take("a", now: start))
        XCTAssertNil(buckets.take("a", now: start))
        XCTAssertNil(buckets.take("a", now: start))
        let wait = try? XCTUnwrap(buckets.take("a", now: start))
        XCTAssertEqual(wait ?? 0, 0.5, accuracy: 0.001, "one token comes back every half second")
        XCTAssertNil(buckets.take("a", now: start + .milliseconds(500)))
        XCTAssertNotNil(buckets.take("a", now: start + .milliseconds(500)))
        XCTAssertNil(buckets.take("b", now: start), "another key has its own bucket")
    }

    /// A rate so slow that the wait would not fit an Int still answers (Retry-After at most a day).
    func testAVerySlowRateAnswersWithABoundedRetryAfter() {
        let middleware = RateLimitMiddleware(RateLimitOptions(perSecond: 1e-30, burst: 1))
        var request = Request(method: "GET", target: "/", path: "/", query: nil, headers: [:], host: "a", clientAddress: "192.0.2.1")
        struct OK: Handler { func handle(_ request: Request) -> Response { Response(status: 200) } }
        XCTAssertEqual(middleware.handle(&request, next: OK()).status, 200)
        let refused = middleware.handle(&request, next: OK())
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(refused.headers["Retry-After"], "86400")
    }

    /// A flood of distinct keys (spoofed header values, many clients) cannot grow memory without bound.
    func testDistinctKeysStayBounded() {
        let buckets = TokenBuckets(perSecond: 0.001, burst: 1, keysPerShard: 64)
        let now = ContinuousClock.now
        for index in 0..<20_000 { _ = buckets.take("key-\(index)", now: now) }
        XCTAssertLessThanOrEqual(buckets.count, TokenBuckets.shardCount * 64)
        XCTAssertNil(buckets.take("newcomer", now: now), "a new client is never refused for want of room")
    }
}

final class IPFilterTests: XCTestCase {
    private func filter(allow: [String] = [], deny: [String] = []) -> IPFilterMiddleware {
        var options = IPFilterOptions()
        options.allow = allow.compactMap(cidr)
        options.deny = deny.compactMap(cidr)
        return IPFilterMiddleware(options)
    }

    private func cidr(_ text: String) -> CIDR? {
        let parts = text.split(separator: "/")
        guard let bytes = TrustedProxies.ipBytes(String(parts[0])) else { return nil }
        return CIDR(bytes: bytes, prefixLength: parts.count == 2 ? Int(parts[1]) ?? 0 : bytes.count * 8)
    }

    func testMostSpecificWinsAndDenyWinsTies() {
        let mixed = filter(allow: ["10.0.0.0/8", "10.1.2.3/32"], deny: ["10.1.0.0/16"])
        XCTAssertTrue(mixed.allows("10.9.9.9"))
        XCTAssertFalse(mixed.allows("10.1.9.9"))
        XCTAssertTrue(mixed.allows("10.1.2.3"))
        XCTAssertFalse(mixed.allows("192.0.2.1"), "with an allow list, unlisted addresses are denied")
        XCTAssertFalse(filter(allow: ["10.0.0.0/8"], deny: ["10.0.0.0/8"]).allows("10.0.0.1"))
        XCTAssertTrue(filter(deny: ["192.0.2.0/24"]).allows("198.51.100.1"), "only deny: everyone else passes")
    }

    func testIPv6AndMappedIPv4() {
        let v6 = filter(allow: ["2001:db8::/32"])
        XCTAssertTrue(v6.allows("2001:db8::1"))
        XCTAssertFalse(v6.allows("2001:db9::1"))
        XCTAssertTrue(filter(allow: ["127.0.0.0/8"]).allows("::ffff:127.0.0.1"), "a dual-stack socket's view of an IPv4 peer")
        XCTAssertFalse(filter(allow: ["127.0.0.0/8"]).allows("-"), "no address matches no network")
    }
}

final class RequestIDTests: XCTestCase {
    func testAcceptedIDsAndMadeOnes() {
        XCTAssertTrue(RequestIDMiddleware.isAcceptable("0f6c1d2e-aa"))
        XCTAssertTrue(RequestIDMiddleware.isAcceptable("trace/a+b=c@d:e.f_g"))
        for bad in ["", String(repeating: "x", count: 129), "a b", "a\u{0}b", "é", "a\"b", "<x>"] {
            XCTAssertFalse(RequestIDMiddleware.isAcceptable(bad), bad)
        }
        let ids = RequestIDs()
        let made = ids.next()
        XCTAssertEqual(made.count, 32)
        XCTAssertTrue(made.allSatisfy(\.isHexDigit))
        XCTAssertNotEqual(made, ids.next())
        XCTAssertNotEqual(made.prefix(16), RequestIDs().next().prefix(16), "another middleware draws another prefix")
    }
}

final class RewriteTests: XCTestCase {
    func testNormalisedPaths() {
        XCTAssertEqual(RewriteMiddleware.normalised("/a/./b/../c"), "/a/c")
        XCTAssertEqual(RewriteMiddleware.normalised("/a/b/.."), "/a/")
        XCTAssertNil(RewriteMiddleware.normalised("/../etc"))
        XCTAssertNil(RewriteMiddleware.normalised("relative"))
        XCTAssertNil(RewriteMiddleware.normalised("/a\0b"))
    }
}

final class BasicAuthCredentialTests: XCTestCase {
    func testCredentialsParsing() {
        let header = "Basic " + Data("alice:pa:ss".utf8).base64EncodedString()
        XCTAssertEqual(BasicAuthMiddleware.credentials(header)?.user, "alice")
        XCTAssertEqual(BasicAuthMiddleware.credentials(header)?.password, "pa:ss", "only the first colon separates")
        XCTAssertEqual(BasicAuthMiddleware.credentials("basic " + Data("a:b".utf8).base64EncodedString())?.user, "a")
        XCTAssertNil(BasicAuthMiddleware.credentials("Basic " + Data("no-colon".utf8).base64EncodedString()))
        XCTAssertNil(BasicAuthMiddleware.credentials("Bearer x"))
        XCTAssertNil(BasicAuthMiddleware.credentials(nil))
    }

    func testHashesVerifyOnlyTheirPassword() throws {
        for method in ["$2b$", "$6$"] {
            let hash = try XCTUnwrap(PasswordHash.make("correct horse", method: method, cost: method == "$2b$" ? 4 : 1000))
            XCTAssertTrue(hash.hasPrefix(method))
            XCTAssertTrue(PasswordHash.verify("correct horse", hash: hash))
            XCTAssertFalse(PasswordHash.verify("correct horsE", hash: hash))
            XCTAssertFalse(PasswordHash.verify("", hash: hash))
        }
        XCTAssertFalse(PasswordHash.verify("x", hash: ""), "no hash never matches")
        XCTAssertFalse(PasswordHash.verify("x", hash: "x"), "a plain text 'hash' never matches")
    }

    func testVerifiedCredentialsAreBounded() {
        let verified = VerifiedCredentials()
        let first = verified.key(for: ("u", "p"))
        verified.insert(first)
        XCTAssertTrue(verified.contains(first))
        XCTAssertFalse(verified.contains(verified.key(for: ("u", "q"))))
        for index in 0..<5000 { verified.insert(verified.key(for: ("u", "p\(index)"))) }
        XCTAssertFalse(verified.contains(first), "emptied when full rather than growing")
    }
}

final class DeflaterTests: XCTestCase {
    func testGzipAndDeflateFraming() throws {
        let text = Array(String(repeating: "compress me ", count: 1000).utf8)
        let gzip = try XCTUnwrap(Deflater.compress(text, .gzip, level: 5))
        XCTAssertEqual(Array(gzip.prefix(2)), [0x1F, 0x8B], "gzip magic")
        XCTAssertLessThan(gzip.count, text.count / 20)
        let deflate = try XCTUnwrap(Deflater.compress(text, .deflate, level: 5))
        XCTAssertEqual(deflate.first.map { $0 & 0x0F }, 8, "zlib header: deflate method")
        XCTAssertEqual(try XCTUnwrap(Deflater.compress([], .gzip, level: 1)).count, 20, "an empty gzip stream is header + trailer")
    }
}
