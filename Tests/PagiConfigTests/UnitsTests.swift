import XCTest
@testable import PagiConfig

final class UnitsTests: XCTestCase {
    func testDurations() {
        XCTAssertEqual(ConfigUnits.parseDuration("250ms"), 0.25)
        XCTAssertEqual(ConfigUnits.parseDuration("10s"), 10)
        XCTAssertEqual(ConfigUnits.parseDuration("5m"), 300)
        XCTAssertEqual(ConfigUnits.parseDuration("1h"), 3600)
        XCTAssertEqual(ConfigUnits.parseDuration("1.5s"), 1.5)
        XCTAssertEqual(ConfigUnits.parseDuration("30"), 30)
        XCTAssertEqual(ConfigUnits.parseDuration("0"), 0)
    }

    func testBadDurations() {
        for text in ["ten", "", "s", "-1s", "10x", "1e3", "inf", "10 s s", "1..2s", "5d"] {
            XCTAssertNil(ConfigUnits.parseDuration(text), text)
        }
    }

    func testSizes() {
        XCTAssertEqual(ConfigUnits.parseSize("512"), 512)
        XCTAssertEqual(ConfigUnits.parseSize("512B"), 512)
        XCTAssertEqual(ConfigUnits.parseSize("16KiB"), 16 * 1024)
        XCTAssertEqual(ConfigUnits.parseSize("10MiB"), 10 * 1024 * 1024)
        XCTAssertEqual(ConfigUnits.parseSize("1GiB"), 1024 * 1024 * 1024)
        XCTAssertEqual(ConfigUnits.parseSize("16KB"), 16_000)
        XCTAssertEqual(ConfigUnits.parseSize("10MB"), 10_000_000)
        XCTAssertEqual(ConfigUnits.parseSize("2GB"), 2_000_000_000)
        XCTAssertEqual(ConfigUnits.parseSize("1.5KiB"), 1536)
        XCTAssertEqual(ConfigUnits.parseSize("16 KiB"), 16 * 1024)
    }

    func testBadSizes() {
        for text in ["big", "", "KiB", "-1", "10XB", "1e3", "99999999999999999999GiB"] {
            XCTAssertNil(ConfigUnits.parseSize(text), text)
        }
    }

    func testDurationAndSizeErrorsInConfig() {
        let yaml = """
        server:
          timeouts: {header: ten}
          limits: {body_bytes: big}
        \(minimalHosts)
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:22: error: expected a duration like 10s, got 'ten'",
            "config.yaml:3:24: error: expected a size like 16KiB, got 'big'",
        ])
    }

    /// Found by the config fuzzer: a ticker of 99999999999999h overflowed the nanoseconds every
    /// later stage counts in, and ended the process. Durations and rates are bounded at load.
    func testDurationsAndRatesTooLargeToCountAreErrors() {
        let yaml = """
        server:
          timeouts: {idle: 99999999999999h, header: 365d}
        hosts:
          - names: [a]
            routes:
              - {path: /t, sse: {ticker: {every: 99999999999999999999h}}}
              - {path: /r, middleware: [{rate_limit: {rate: 1\(String(repeating: "0", count: 300))/s}}], health: true}
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:20: error: duration '99999999999999h' is too long (at most 365 days)",
            "config.yaml:2:45: error: expected a duration like 10s, got '365d'",
            "config.yaml:6:42: error: duration '99999999999999999999h' is too long (at most 365 days)",
            "config.yaml:7:53: error: expected a rate like 10/s, 100/m or 1000/h (at most 1000000000/s), got '1\(String(repeating: "0", count: 300))/s'",
        ])
        XCTAssertNoThrow(try loadConfig("server: {timeouts: {idle: 8760h}}\n" + minimalHosts), "a year is the longest")
    }
}

final class SuggestionTests: XCTestCase {
    func testClosestCandidate() {
        XCTAssertEqual(Suggestion.closest(to: "stattic", among: ["path", "static", "sse"]), "static")
        XCTAssertEqual(Suggestion.closest(to: "insde", among: ["inside", "always", "never"]), "inside")
        XCTAssertEqual(Suggestion.closest(to: "rotues", among: ["names", "routes"]), "routes")  // adjacent swap
        XCTAssertEqual(Suggestion.closest(to: "max", among: ["max_requests", "threads"]), "max_requests")  // prefix
        XCTAssertNil(Suggestion.closest(to: "zzzzzz", among: ["static", "respond"]))
    }

    func testEditDistance() {
        XCTAssertEqual(Suggestion.editDistance("abc", "abc"), 0)
        XCTAssertEqual(Suggestion.editDistance("abc", "acb"), 1)
        XCTAssertEqual(Suggestion.editDistance("", "abc"), 3)
        XCTAssertEqual(Suggestion.editDistance("kitten", "sitting"), 3)
    }
}

final class NetworkSyntaxTests: XCTestCase {
    func testCIDRs() {
        XCTAssertEqual(NetworkSyntax.cidr("10.0.0.0/8"), CIDR(bytes: [10, 0, 0, 0], prefixLength: 8))
        XCTAssertEqual(NetworkSyntax.cidr("192.168.1.7"), CIDR(bytes: [192, 168, 1, 7], prefixLength: 32))
        XCTAssertEqual(NetworkSyntax.cidr("::1/128")?.bytes, [UInt8](repeating: 0, count: 15) + [1])
        XCTAssertEqual(NetworkSyntax.cidr("fd00::/8")?.prefixLength, 8)
        XCTAssertEqual(NetworkSyntax.cidr("::ffff:10.0.0.1")?.bytes.suffix(6), [0xFF, 0xFF, 10, 0, 0, 1])
        XCTAssertEqual(NetworkSyntax.cidr("2001:db8:0:0:0:0:0:1")?.bytes.first, 0x20)
        for bad in ["10.0.0/8", "10.0.0.256", "10.0.0.0/33", "::1/129", "1:2:3", "1::2::3", "fd00::/x", "abc"] {
            XCTAssertNil(NetworkSyntax.cidr(bad), bad)
        }
    }

    func testVirtualHostNames() {
        for good in ["example.com", "*.example.org", "*", "localhost", "127.0.0.1", "[::1]", "my_host.local"] {
            XCTAssertTrue(NetworkSyntax.isVirtualHostName(good), good)
        }
        for bad in ["exa mple.com", "-a.com", "a..com", "*.", "**", "a.*.com", "[zz]"] {
            XCTAssertFalse(NetworkSyntax.isVirtualHostName(bad), bad)
        }
    }
}
