import NIOCore
@testable import PagiEngine
import XCTest

/// The hand-written RFC 9112 parser on byte streams split at every possible point.
final class RequestParserTests: XCTestCase {
    private let limits = ParserLimits(headerBytes: 1024, uriBytes: 128, headerCount: 10, bodyBytes: 100)

    /// Parses `input` fed in pieces of `step` bytes; returns the events, or the error.
    private func parse(_ input: String, step: Int = .max) -> (events: [String], error: ProtocolError?) {
        var parser = RequestParser(limits: limits)
        var buffer = ByteBuffer()
        var events: [String] = []
        let bytes = Array(input.utf8)
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + step)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            do {
                while let event = try parser.next(&buffer) {
                    switch event {
                    case .head(let head): events.append("head \(head.method) \(head.target) \(head.framing)")
                    case .body(let body): events.append("body \(String(buffer: body))")
                    case .end: events.append("end")
                    }
                }
            } catch {
                return (events, error)
            }
        } while offset < bytes.count
        return (events, nil)
    }

    func testSimpleRequestAtEverySplitPoint() {
        let request = "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"
        for step in 1...request.utf8.count {
            XCTAssertEqual(parse(request, step: step).events, ["head GET /a?b=c none", "end"], "step \(step)")
        }
    }

    func testContentLengthBodyAcrossSplits() {
        let request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        let joined = parse(request, step: 3).events.filter { $0.hasPrefix("body") }.map { $0.dropFirst(5) }.joined()
        XCTAssertEqual(joined, "hello")
        XCTAssertEqual(parse(request).events.last, "end")
    }

    func testChunkedBodyWithExtensionsAndTrailers() {
        let request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"
        for step in [1, 2, 7, 1000] {
            let result = parse(request, step: step)
            XCTAssertNil(result.error)
            XCTAssertEqual(result.events.filter { $0.hasPrefix("body") }.map { $0.dropFirst(5) }.joined(), "abcde", "step \(step)")
            XCTAssertEqual(result.events.last, "end")
        }
    }

    func testLeadingEmptyLinesAreIgnoredAndBareLFAccepted() {
        XCTAssertEqual(parse("\r\n\r\nGET / HTTP/1.1\nHost: x\n\n").events, ["head GET / none", "end"])
    }

    func testLimitsMapToTheirStatuses() {
        XCTAssertEqual(parse("GET /\(String(repeating: "u", count: 200)) HTTP/1.1\r\nHost: x\r\n\r\n").error?.status, 414)
        XCTAssertEqual(parse("GET /\(String(repeating: "u", count: 2000))").error?.status, 414, "an endless request line is 414 before it completes")
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: x\r\nA: \(String(repeating: "v", count: 2000))\r\n\r\n").error?.status, 431)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: x\r\nA: \(String(repeating: "v", count: 2000))").error?.status, 431, "an endless header is 431 before it completes")
        let headers = (0..<11).map { "H\($0): v\r\n" }.joined()
        XCTAssertEqual(parse("GET / HTTP/1.1\r\n\(headers)\r\n").error?.status, 431)
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n").error?.status, 413)
    }

    func testFramingConflictsAreRejected() {
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").error?.status, 400)
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").error?.status, 400)
        XCTAssertNil(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx").error, "identical duplicates are one value (RFC 9110 §8.6)")
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n").error?.status, 400)
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n").error?.status, 400)
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nTransfer-Encoding: deflate, chunked\r\n\r\n").error?.status, 501)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nExpect: something\r\n\r\n").error?.status, 417)
    }

    /// The end of the head is found however its line ends are mixed and wherever the bytes split
    /// (the search jumps from line end to line end and resumes where it stopped).
    func testTheHeadEndsAtTheFirstEmptyLineAtEverySplitPoint() {
        let heads = ["GET / HTTP/1.1\r\nHost: x\n\r\n", "GET / HTTP/1.1\nHost: x\r\n\n", "GET / HTTP/1.1\r\nHost: x\r\nA: \r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"]
        for request in heads {
            for step in 1...request.utf8.count {
                let events = parse(request, step: step).events
                XCTAssertEqual(events.first, "head GET / none", "\(request.debugDescription) step \(step)")
                XCTAssertEqual(events.count, request.contains("/b") ? 4 : 2, "\(request.debugDescription) step \(step)")
            }
        }
        // A line of CRs alone ends the head too, and is then refused as a field line.
        for step in [1, 2, 5, 1000] {
            XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", step: step).error?.status, 400)
        }
    }

    func testFieldLinesAndVersionsAreCheckedByteByByte() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n").error?.reason, "invalid header name")
        XCTAssertEqual(parse("GET / HTTP/1.1\r\n: v\r\n\r\n").error?.reason, "invalid header name")
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n").error?.reason, "header line without colon")
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nA\u{7F}: v\r\n\r\n").error?.reason, "invalid header name")
        XCTAssertEqual(parse("GET / HTTX/1.1\r\nHost: x\r\n\r\n").error?.reason, "malformed HTTP version")
        XCTAssertEqual(parse("GET / http/1.1\r\nHost: x\r\n\r\n").error?.reason, "malformed HTTP version")
        XCTAssertEqual(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n").error?.status, 505)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: x\r\nX-Token: a:b\r\n\r\n").events, ["head GET / none", "end"])
    }

    func testChunkSizeOverflowIsRejected() {
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n").error?.status, 400)
    }
}
