import Foundation
import PagiTestSupport
import XCTest

/// The static handler end to end, over sockets: byte-exact bodies (sendfile and memory paths),
/// ranges, conditionals, directories, precompressed variants, error pages.
final class StaticIntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!
    private let big = deterministicBytes(count: 5 * 1024 * 1024)

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "site/big.bin", big)
        try writeFile(dir, "site/small.txt", "hello, world\n")
        try writeFile(dir, "site/style.css", "body { color: red }\n")
        try writeFile(dir, "site/style.css.gz", [0x1F, 0x8B, 1, 2, 3])
        try writeFile(dir, "site/style.css.br", [9, 9, 9])
        try writeFile(dir, "site/docs/index.html", "<p>docs</p>")
        try writeFile(dir, "site/files/a.txt", "A")
        try writeFile(dir, "site/files/b.txt", "BB")
        try writeFile(dir, "site/.secret", "hidden")
        try writeFile(dir, "outside.txt", "outside")
        try writeFile(dir, "errors/404.html", "<h1>custom missing page</h1>")
        try writeFile(dir, "app/index.html", "<div id=app></div>")
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("site/escape.txt").path,
                                                   withDestinationPath: dir.appendingPathComponent("outside.txt").path)
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [localhost]
                errors: {404: errors/404.html}
                routes:
                  - path: /
                    static: {root: site, cache_control: "public, max-age=60"}
                  - path: /files/
                    static: {root: site/files, listing: true}
                  - path: /app/
                    static: {root: app, fallback: /index.html}
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func get(_ path: String, _ headers: [String: String] = [:], method: String = "GET") throws -> RawResponse {
        try XCTUnwrap(RawClient.get(port: server.port, path, headers: headers, method: method))
    }

    func testLargeFileIsByteExactWithValidators() throws {
        let response = try get("/big.bin")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.count, big.count)
        XCTAssertTrue(response.body == big, "5 MiB body must be byte-exact")
        XCTAssertEqual(response.header("Content-Type"), "application/octet-stream")
        XCTAssertEqual(response.header("Accept-Ranges"), "bytes")
        XCTAssertEqual(response.header("Cache-Control"), "public, max-age=60")
        let etag = try XCTUnwrap(response.header("ETag"))
        XCTAssertTrue(etag.hasPrefix("\"") && etag.hasSuffix("\""), "strong ETag")
        XCTAssertNotNil(response.header("Last-Modified"))
    }

    func testSmallTextFileHasCharset() throws {
        let response = try get("/small.txt")
        XCTAssertEqual(response.text, "hello, world\n")
        XCTAssertEqual(response.header("Content-Type"), "text/plain; charset=utf-8")
        XCTAssertEqual(response.header("Content-Length"), "13")
    }

    func testHeadHasHeadersButNoBody() throws {
        let client = try RawClient(port: server.port)
        client.send("HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let head = try XCTUnwrap(client.readResponse(head: true))
        XCTAssertEqual(head.header("Content-Length"), String(big.count))
        XCTAssertEqual(client.readResponse()?.text, "hello, world\n", "no body bytes were sent for HEAD")
    }

    func testTwoHundredRandomRangesAreByteExact() throws {
        var generator = SystemRandomNumberGenerator()
        let client = try RawClient(port: server.port)
        for i in 0..<200 {
            let start = Int.random(in: 0..<big.count, using: &generator)
            let end = min(big.count - 1, start + Int.random(in: 0..<200_000, using: &generator))
            let form = i % 3
            let header = form == 0 ? "bytes=\(start)-\(end)" : form == 1 ? "bytes=\(start)-" : "bytes=-\(end - start + 1)"
            client.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: \(header)\r\n\r\n")
            let response = try XCTUnwrap(client.readResponse())
            XCTAssertEqual(response.status, 206, header)
            let (from, to): (Int, Int) = form == 0 ? (start, end) : form == 1 ? (start, big.count - 1) : (big.count - (end - start + 1), big.count - 1)
            XCTAssertEqual(response.header("Content-Range"), "bytes \(from)-\(to)/\(big.count)", header)
            XCTAssertTrue(response.body == Array(big[from...to]), "range \(header) byte-exact")
        }
    }

    /// Ranges up to 64 KiB are read into memory, bigger ones are sent with sendfile: both sides of
    /// the boundary, and the file's first and last byte, come back byte-exact.
    func testRangesAroundTheInMemoryLimitAreByteExact() throws {
        let client = try RawClient(port: server.port)
        let limit = 64 * 1024
        for (from, to) in [(1000, 1000 + limit - 1), (1000, 1000 + limit), (0, 0), (big.count - 1, big.count - 1),
                           (big.count - limit, big.count - 1)] {
            client.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=\(from)-\(to)\r\n\r\n")
            let response = try XCTUnwrap(client.readResponse())
            XCTAssertEqual(response.status, 206)
            XCTAssertEqual(response.header("Content-Range"), "bytes \(from)-\(to)/\(big.count)")
            XCTAssertEqual(response.header("Content-Length"), String(to - from + 1))
            XCTAssertTrue(response.body == Array(big[from...to]), "bytes=\(from)-\(to) byte-exact")
        }
    }

    func testMultipleRangesComeBackAsMultipartByteranges() throws {
        let response = try get("/big.bin", ["Range": "bytes=0-99,1000-1999,-50"])
        XCTAssertEqual(response.status, 206)
        let contentType = try XCTUnwrap(response.header("Content-Type"))
        XCTAssertTrue(contentType.hasPrefix("multipart/byteranges; boundary="))
        let boundary = String(contentType.dropFirst("multipart/byteranges; boundary=".count))
        let parts = try parseMultipart(response.body, boundary: boundary)
        XCTAssertEqual(parts.count, 3)
        let expected = [(0, 99), (1000, 1999), (big.count - 50, big.count - 1)]
        for (part, (from, to)) in zip(parts, expected) {
            XCTAssertEqual(part.headers["content-range"], "bytes \(from)-\(to)/\(big.count)")
            XCTAssertEqual(part.headers["content-type"], "application/octet-stream")
            XCTAssertTrue(part.body == Array(big[from...to]))
        }
    }

    func testOverlappingOrTooManyRangesGetTheWholeFile() throws {
        let overlapping = try get("/small.txt", ["Range": "bytes=0-5,3-8"])
        XCTAssertEqual(overlapping.status, 200)
        XCTAssertEqual(overlapping.text, "hello, world\n")
        let many = (0..<17).map { "\($0 * 2)-\($0 * 2)" }.joined(separator: ",")
        let tooMany = try get("/big.bin", ["Range": "bytes=\(many)"])
        XCTAssertEqual(tooMany.status, 200)
        XCTAssertEqual(tooMany.body.count, big.count)
    }

    func testUnsatisfiableRangeIs416() throws {
        let response = try get("/small.txt", ["Range": "bytes=100-200"])
        XCTAssertEqual(response.status, 416)
        XCTAssertEqual(response.header("Content-Range"), "bytes */13")
    }

    func testConditionalRequests() throws {
        let first = try get("/small.txt")
        let etag = try XCTUnwrap(first.header("ETag"))
        let lastModified = try XCTUnwrap(first.header("Last-Modified"))

        let notModified = try get("/small.txt", ["If-None-Match": etag])
        XCTAssertEqual(notModified.status, 304)
        XCTAssertEqual(notModified.header("ETag"), etag)
        XCTAssertTrue(notModified.body.isEmpty)
        XCTAssertEqual(try get("/small.txt", ["If-None-Match": "W/\(etag)"]).status, 304)
        XCTAssertEqual(try get("/small.txt", ["If-None-Match": "*"]).status, 304)
        XCTAssertEqual(try get("/small.txt", ["If-Modified-Since": lastModified]).status, 304)
        XCTAssertEqual(try get("/small.txt", ["If-None-Match": "\"other\""]).status, 200)
        XCTAssertEqual(try get("/small.txt", ["If-Match": "\"other\""]).status, 412)
        XCTAssertEqual(try get("/small.txt", ["If-Match": etag]).status, 200)
        XCTAssertEqual(try get("/small.txt", ["If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"]).status, 412)

        let fresh = try get("/small.txt", ["Range": "bytes=0-4", "If-Range": etag])
        XCTAssertEqual(fresh.status, 206)
        XCTAssertEqual(fresh.text, "hello")
        let stale = try get("/small.txt", ["Range": "bytes=0-4", "If-Range": "\"stale\""])
        XCTAssertEqual(stale.status, 200)
        XCTAssertEqual(stale.text, "hello, world\n")
    }

    func testDirectoriesRedirectServeIndexAndList() throws {
        let redirect = try get("/docs?x=1")
        XCTAssertEqual(redirect.status, 301)
        XCTAssertEqual(redirect.header("Location"), "/docs/?x=1")
        XCTAssertEqual(try get("/docs/").text, "<p>docs</p>")

        let listing = try get("/files/", ["Accept": "application/json"])
        XCTAssertEqual(listing.status, 200)
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listing.body)) as? [[String: Any]])
        XCTAssertEqual(entries.compactMap { $0["name"] as? String }.sorted(), ["a.txt", "b.txt"])
        let html = try get("/files/")
        XCTAssertTrue(html.text.contains("href=\"a.txt\""), html.text)
    }

    func testSPAFallbackServesIndex() throws {
        let response = try get("/app/some/client/route")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "<div id=app></div>")
    }

    func testPrecompressedVariantsAndVary() throws {
        let br = try get("/style.css", ["Accept-Encoding": "gzip, br"])
        XCTAssertEqual(br.header("Content-Encoding"), "br")
        XCTAssertEqual(br.body, [9, 9, 9])
        XCTAssertEqual(br.header("Content-Type"), "text/css; charset=utf-8")
        XCTAssertEqual(br.header("Vary"), "Accept-Encoding")

        let gzip = try get("/style.css", ["Accept-Encoding": "gzip;q=1, br;q=0.5"])
        XCTAssertEqual(gzip.header("Content-Encoding"), "gzip")
        XCTAssertNotEqual(gzip.header("ETag"), br.header("ETag"), "each representation has its own ETag")

        let identity = try get("/style.css")
        XCTAssertNil(identity.header("Content-Encoding"))
        XCTAssertEqual(identity.text, "body { color: red }\n")
        XCTAssertEqual(identity.header("Vary"), "Accept-Encoding")

        let etag = try XCTUnwrap(br.header("ETag"))
        let notModified = try get("/style.css", ["Accept-Encoding": "br", "If-None-Match": etag])
        XCTAssertEqual(notModified.status, 304)
        XCTAssertEqual(notModified.header("Vary"), "Accept-Encoding")
    }

    func testHiddenAndEscapingFilesAreNotServed() throws {
        let hidden = try get("/.secret")
        XCTAssertEqual(hidden.status, 404)
        XCTAssertEqual(hidden.text, "<h1>custom missing page</h1>", "host error page is used")
        XCTAssertEqual(try get("/escape.txt").status, 404)
        XCTAssertEqual(try get("/%2e%2e/outside.txt").status, 400)
    }

    func testOtherMethodsAre405WithAllow() throws {
        let response = try get("/small.txt", method: "DELETE")
        XCTAssertEqual(response.status, 405)
        XCTAssertEqual(response.header("Allow"), "GET, HEAD, OPTIONS")
    }

    func testFiftyConcurrentDownloadsAreByteExact() throws {
        let port = server.port
        let expected = big
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 50) { _ in
            let response = RawClient.get(port: port, "/big.bin")
            if response?.status != 200 || response?.body != expected { failures.increment() }
        }
        XCTAssertEqual(failures.value, 0)
    }

    private struct Part {
        var headers: [String: String]
        var body: [UInt8]
    }

    private func parseMultipart(_ body: [UInt8], boundary: String) throws -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [Part] = []
        var index = 0
        func find(_ needle: [UInt8], from: Int) -> Int? {
            guard body.count >= needle.count else { return nil }
            var i = from
            while i <= body.count - needle.count {
                if body[i] == needle[0] && Array(body[i..<(i + needle.count)]) == needle { return i }
                i += 1
            }
            return nil
        }
        guard var start = find(delimiter, from: index) else { throw POSIXError(.EINVAL) }
        while true {
            index = start + delimiter.count
            if body[index] == UInt8(ascii: "-") { break }
            guard let headEnd = find(Array("\r\n\r\n".utf8), from: index) else { throw POSIXError(.EINVAL) }
            let headText = String(decoding: body[(index + 2)..<headEnd], as: UTF8.self)
            var headers: [String: String] = [:]
            for line in headText.components(separatedBy: "\r\n") {
                let pair = line.split(separator: ":", maxSplits: 1)
                if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
            }
            let range = try XCTUnwrap(headers["content-range"])
            let numbers = range.dropFirst("bytes ".count).split(separator: "/")[0].split(separator: "-").compactMap { Int($0) }
            let length = numbers[1] - numbers[0] + 1
            let bodyStart = headEnd + 4
            parts.append(Part(headers: headers, body: Array(body[bodyStart..<(bodyStart + length)])))
            guard let next = find(delimiter, from: bodyStart + length) else { throw POSIXError(.EINVAL) }
            start = next
        }
        return parts
    }
}

final class LockedCounter: @unchecked Sendable {
    // @unchecked: `count` is only touched under `lock`.
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
