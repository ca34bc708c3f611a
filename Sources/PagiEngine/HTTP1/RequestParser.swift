#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import PagiCore

/// Limits the parser enforces while bytes arrive, before anything is buffered beyond them.
struct ParserLimits: Sendable {
    var headerBytes: Int
    var uriBytes: Int
    var headerCount: Int
    var bodyBytes: Int
}

/// A request head as parsed off the wire, before routing.
struct RequestHead: Sendable {
    var method: String
    var target: String
    var versionMinor: Int
    var headers: [(name: String, value: String)]
    /// Declared body framing.
    var framing: BodyFraming
    var expectsContinue: Bool
}

enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// A protocol error: the status to answer with; the connection is closed afterwards and
/// nothing more is read from it (no request smuggling after a framing error).
struct ProtocolError: Error, Sendable, Equatable {
    var status: Int
    var reason: String
}

enum ParseEvent: Sendable {
    case head(RequestHead)
    case body(ByteBuffer)
    case end
}

/// A strict RFC 9112 request parser, written by hand because NIO's llhttp-based decoder cannot
/// enforce the configured head/URI/header-count limits before buffering, and reports errors too
/// coarsely to answer 414 vs 431, 501 vs 400 or 505 correctly.
///
/// Feed it the connection's cumulative buffer; each call consumes what it parsed and returns one
/// event, or nil when it needs more bytes.
struct RequestParser {
    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytesSeen: Int)
        case done
    }

    let limits: ParserLimits
    private var state: State = .head
    private var bodyBytesSeen = 0
    /// How far the search for the end of the current head got, and whether it stopped just after a line end.
    private struct HeadScan {
        var offset = 0
        var atLineEnd = false
    }
    private var headScan = HeadScan()
    /// Upper bound of what a chunk-size line (with extensions) may take.
    private static let maxChunkLine = 4096

    init(limits: ParserLimits) { self.limits = limits }

    /// True between requests: nothing of the next request has been consumed yet.
    var isIdle: Bool {
        if case .head = state { return true }
        return false
    }

    mutating func next(_ buffer: inout ByteBuffer) throws(ProtocolError) -> ParseEvent? {
        switch state {
        case .head:
            return try parseHead(&buffer)
        case .done:
            state = .head
            return .end
        case .fixedBody(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: take) ?? ByteBuffer()
            state = remaining - take == 0 ? .done : .fixedBody(remaining: remaining - take)
            return .body(slice)
        case .chunkSize:
            guard let line = try readLine(&buffer, max: Self.maxChunkLine, error: ProtocolError(status: 400, reason: "chunk size line too long")) else {
                return nil
            }
            let size = try Self.parseChunkSize(line)
            if size == 0 {
                state = .trailers(bytesSeen: 0)
                return try next(&buffer)
            }
            bodyBytesSeen += size
            if limits.bodyBytes > 0 && bodyBytesSeen > limits.bodyBytes {
                throw ProtocolError(status: 413, reason: "request body too large")
            }
            state = .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: take) ?? ByteBuffer()
            state = remaining - take == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            return .body(slice)
        case .chunkDataEnd:
            guard let line = try readLine(&buffer, max: 2, error: ProtocolError(status: 400, reason: "chunk data not followed by CRLF")) else {
                return nil
            }
            guard line.isEmpty else { throw ProtocolError(status: 400, reason: "chunk data not followed by CRLF") }
            state = .chunkSize
            return try next(&buffer)
        case .trailers(let seen):
            let budget = limits.headerBytes - seen
            guard let line = try readLine(&buffer, max: max(budget, 0), error: ProtocolError(status: 431, reason: "trailer section too large")) else {
                return nil
            }
            if line.isEmpty {
                state = .head
                return .end
            }
            // Trailer fields are validated like header fields and then dropped: nothing here uses them.
            try Self.checkFieldLine(line)
            state = .trailers(bytesSeen: seen + line.count + 2)
            return try next(&buffer)
        }
    }

    // MARK: - Head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(ProtocolError) -> ParseEvent? {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") {
            if first == UInt8(ascii: "\r") {
                guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
                guard second == UInt8(ascii: "\n") else { throw ProtocolError(status: 400, reason: "bare CR") }
                buffer.moveReaderIndex(forwardBy: 2)
            } else {
                buffer.moveReaderIndex(forwardBy: 1)
            }
        }
        guard let headEnd = findHeadEnd(buffer, limit: limits.headerBytes) else {
            if buffer.readableBytes > limits.headerBytes {
                let hasLineEnd = buffer.readableBytesView.prefix(limits.uriBytes + 64).contains(UInt8(ascii: "\n"))
                throw hasLineEnd || buffer.readableBytes <= limits.uriBytes
                    ? ProtocolError(status: 431, reason: "request header fields too large")
                    : ProtocolError(status: 414, reason: "URI too long")
            }
            if !buffer.readableBytesView.prefix(limits.uriBytes + 64).contains(UInt8(ascii: "\n")) && buffer.readableBytes > limits.uriBytes + 32 {
                throw ProtocolError(status: 414, reason: "URI too long")
            }
            return nil
        }
        // The head is parsed in place, on the read buffer's own memory: no copy, no per-line arrays.
        let headerCount = limits.headerCount
        let uriBytes = limits.uriBytes
        let parsed = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(ProtocolError) -> RequestHead in
                try Self.parseHeadLines(UnsafeRawBufferPointer(rebasing: bytes[..<headEnd]), uriBytes: uriBytes,
                                        headerCount: headerCount)
            }
        }
        buffer.moveReaderIndex(forwardBy: headEnd)
        var head = try parsed.get()
        try determineFraming(&head)
        switch head.framing {
        case .none: state = .done
        case .length(let n): state = n == 0 ? .done : .fixedBody(remaining: n)
        case .chunked: state = .chunkSize
        }
        bodyBytesSeen = 0
        return .head(head)
    }

    /// Offset just past the blank line ending the head (CRLF CRLF, or bare LFs), if within `limit`.
    /// Resumes where the previous call stopped, so a head trickled in byte by byte costs O(n), not O(n²).
    /// Jumps from line end to line end with memchr(3) (vectorised in glibc): a byte-by-byte loop
    /// was ~1,000 instructions of a small request (docs/performance.md, *Round five*).
    private mutating func findHeadEnd(_ buffer: ByteBuffer, limit: Int) -> Int? {
        let scan = headScan
        let (headEnd, stoppedAt) = buffer.withUnsafeReadableBytes { bytes -> (Int?, HeadScan) in
            let end = min(bytes.count, limit + 4)
            // Only CRs since the last LF: the next LF ends an empty line, and so the head.
            var onlyCRs = scan.atLineEnd
            var index = scan.offset
            while index < end, let base = bytes.baseAddress {
                guard let found = memchr(base + index, Int32(UInt8(ascii: "\n")), end - index) else {
                    if onlyCRs { onlyCRs = Self.allCR(bytes, index..<end) }
                    return (nil, HeadScan(offset: end, atLineEnd: onlyCRs))
                }
                let lf = base.distance(to: UnsafeRawPointer(found))
                if onlyCRs && Self.allCR(bytes, index..<lf) { return (lf + 1, HeadScan()) }
                onlyCRs = true
                index = lf + 1
            }
            return (nil, HeadScan(offset: index, atLineEnd: onlyCRs))
        }
        headScan = stoppedAt
        return headEnd
    }

    private static func allCR(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        for index in range where bytes[index] != UInt8(ascii: "\r") { return false }
        return true
    }

    /// The request line and header fields of a complete head (ending with its empty line). Lines
    /// end with CRLF or a bare LF; a CR that is not followed by LF stays in the line and is
    /// rejected there.
    private static func parseHeadLines(_ bytes: UnsafeRawBufferPointer, uriBytes: Int, headerCount: Int) throws(ProtocolError) -> RequestHead {
        var lines = HeadLines(bytes: bytes)
        guard let requestLine = lines.next(), !requestLine.isEmpty else { throw ProtocolError(status: 400, reason: "empty request") }
        var head = try parseRequestLine(Slice(base: bytes, bounds: requestLine), uriBytes: uriBytes)
        head.headers.reserveCapacity(8)
        while let line = lines.next(), !line.isEmpty {
            guard head.headers.count < headerCount else {
                throw ProtocolError(status: 431, reason: "too many header fields")
            }
            head.headers.append(try parseHeaderLine(Slice(base: bytes, bounds: line)))
        }
        return head
    }

    /// The lines of a head, one at a time, as ranges without their terminators. (A struct, not a
    /// closure over a position: captured variables are checked for exclusive access at run time.)
    private struct HeadLines {
        let bytes: UnsafeRawBufferPointer
        var start = 0

        mutating func next() -> Range<Int>? {
            guard start < bytes.count, let base = bytes.baseAddress,
                  let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else { return nil }
            let lf = base.distance(to: UnsafeRawPointer(found))
            var lineEnd = lf
            if lineEnd > start && bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            defer { start = lf + 1 }
            return start..<lineEnd
        }
    }

    /// `method SP request-target SP HTTP-version`, with exactly two single spaces.
    private static func parseRequestLine(_ line: Slice<UnsafeRawBufferPointer>, uriBytes: Int) throws(ProtocolError) -> RequestHead {
        let firstSpace = line.firstIndex(of: UInt8(ascii: " ")) ?? line.endIndex
        let targetStart = min(firstSpace + 1, line.endIndex)
        let secondSpace = line[targetStart...].firstIndex(of: UInt8(ascii: " "))
        let method = line[..<firstSpace]
        let target = line[targetStart..<(secondSpace ?? line.endIndex)]
        guard let secondSpace, firstSpace < line.endIndex, !method.isEmpty, !target.isEmpty,
              !line[(secondSpace + 1)...].contains(UInt8(ascii: " ")) else {
            if firstSpace < line.endIndex && target.count > uriBytes {
                throw ProtocolError(status: 414, reason: "URI too long")
            }
            throw ProtocolError(status: 400, reason: "malformed request line")
        }
        guard method.allSatisfy(isTokenChar) else { throw ProtocolError(status: 400, reason: "malformed method") }
        guard target.count <= uriBytes else { throw ProtocolError(status: 414, reason: "URI too long") }
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ProtocolError(status: 400, reason: "invalid character in request target")
        }
        let version = line[(secondSpace + 1)...]
        let v = version.startIndex
        guard version.count == 8, version[v] == UInt8(ascii: "H"), version[v + 1] == UInt8(ascii: "T"),
              version[v + 2] == UInt8(ascii: "T"), version[v + 3] == UInt8(ascii: "P"), version[v + 4] == UInt8(ascii: "/"),
              isDigit(version[v + 5]),
              version[v + 6] == UInt8(ascii: "."), isDigit(version[v + 7]) else {
            throw ProtocolError(status: 400, reason: "malformed HTTP version")
        }
        let major = version[v + 5], minor = version[v + 7]
        guard major == UInt8(ascii: "1") else {
            throw ProtocolError(status: 505, reason: "HTTP version not supported")
        }
        return RequestHead(
            method: String(decoding: UnsafeRawBufferPointer(rebasing: method), as: UTF8.self),
            target: String(decoding: UnsafeRawBufferPointer(rebasing: target), as: UTF8.self),
            // A higher minor version is served as the highest we implement (RFC 9110 §2.5): 1.2 → 1.1.
            versionMinor: min(1, Int(minor - UInt8(ascii: "0"))),
            headers: [],
            framing: .none,
            expectsContinue: false
        )
    }

    private static func parseHeaderLine(_ line: Slice<UnsafeRawBufferPointer>) throws(ProtocolError) -> (name: String, value: String) {
        let fields = try fieldParts(line)
        return (String(decoding: UnsafeRawBufferPointer(rebasing: fields.name), as: UTF8.self),
                String(decoding: UnsafeRawBufferPointer(rebasing: fields.value), as: UTF8.self))
    }

    /// A trailer field line, checked like a header line (RFC 9112 §7.1.2).
    private static func checkFieldLine(_ line: [UInt8]) throws(ProtocolError) {
        let result = line.withUnsafeBytes { bytes in
            Result { () throws(ProtocolError) in _ = try fieldParts(bytes[...]) }
        }
        try result.get()
    }

    /// `name: OWS value OWS`: the name a token, the value visible characters, obs-text, SP and HTAB.
    private static func fieldParts(_ line: Slice<UnsafeRawBufferPointer>) throws(ProtocolError)
        -> (name: Slice<UnsafeRawBufferPointer>, value: Slice<UnsafeRawBufferPointer>) {
        guard let first = line.first else { throw ProtocolError(status: 400, reason: "empty header line") }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            throw ProtocolError(status: 400, reason: "obsolete line folding")
        }
        // The name's token characters and the colon after them, in one pass.
        var colon = line.startIndex
        while colon < line.endIndex && isTokenChar(line[colon]) { colon += 1 }
        guard colon < line.endIndex, line[colon] == UInt8(ascii: ":") else {
            throw line[colon...].contains(UInt8(ascii: ":"))
                ? ProtocolError(status: 400, reason: "invalid header name")
                : ProtocolError(status: 400, reason: "header line without colon")
        }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { throw ProtocolError(status: 400, reason: "invalid header name") }
        var valueStart = colon + 1, valueEnd = line.endIndex
        while valueStart < valueEnd, line[valueStart] == UInt8(ascii: " ") || line[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == UInt8(ascii: " ") || line[valueEnd - 1] == UInt8(ascii: "\t") { valueEnd -= 1 }
        let value = line[valueStart..<valueEnd]
        // No CR, LF, NUL or other controls in a value.
        guard value.allSatisfy({ $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw ProtocolError(status: 400, reason: "invalid character in header value")
        }
        return (name, value)
    }

    /// RFC 9112 §6: decides how the body is delimited, refusing every ambiguous combination.
    private func determineFraming(_ head: inout RequestHead) throws(ProtocolError) {
        var contentLength: Int?
        var transferCodings: [String] = []
        var sawTransferEncoding = false
        for (name, value) in head.headers {
            if name.asciiCaseInsensitiveEquals("content-length") {
                for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let trimmed = item.trimmingOWS
                    guard !trimmed.isEmpty, trimmed.utf8.count <= 18, trimmed.utf8.allSatisfy(Self.isDigit), let n = Int(trimmed) else {
                        throw ProtocolError(status: 400, reason: "invalid Content-Length")
                    }
                    if let existing = contentLength, existing != n {
                        throw ProtocolError(status: 400, reason: "conflicting Content-Length values")
                    }
                    contentLength = n
                }
            } else if name.asciiCaseInsensitiveEquals("transfer-encoding") {
                sawTransferEncoding = true
                for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let coding = item.trimmingOWS.lowercased()
                    guard !coding.isEmpty else { throw ProtocolError(status: 400, reason: "invalid Transfer-Encoding") }
                    transferCodings.append(coding)
                }
            } else if name.asciiCaseInsensitiveEquals("expect") {
                guard value.lowercased() == "100-continue" else {
                    throw ProtocolError(status: 417, reason: "unsupported expectation")
                }
                head.expectsContinue = head.versionMinor >= 1
            }
        }
        if sawTransferEncoding {
            guard contentLength == nil else {
                throw ProtocolError(status: 400, reason: "both Content-Length and Transfer-Encoding")
            }
            guard head.versionMinor >= 1 else {
                throw ProtocolError(status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request")
            }
            guard transferCodings.last == "chunked" else {
                throw ProtocolError(status: 400, reason: "chunked is not the final transfer coding")
            }
            guard transferCodings.count == 1 else {
                throw transferCodings.dropLast().contains("chunked")
                    ? ProtocolError(status: 400, reason: "chunked applied more than once")
                    : ProtocolError(status: 501, reason: "transfer coding not implemented")
            }
            head.framing = .chunked
        } else if let contentLength {
            if limits.bodyBytes > 0 && contentLength > limits.bodyBytes {
                throw ProtocolError(status: 413, reason: "request body too large")
            }
            head.framing = contentLength == 0 ? .none : .length(contentLength)
        }
    }

    // MARK: - Chunked

    /// Reads one CRLF-terminated line of at most `max` bytes, without its terminator. A bare LF is
    /// refused: parsers that accept it where others do not disagree on where a chunk ends, which is
    /// a request-smuggling vector (RFC 9112 §7.1 requires CRLF).
    private func readLine(_ buffer: inout ByteBuffer, max: Int, error: ProtocolError) throws(ProtocolError) -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let lf = view.prefix(max + 2).firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > max + 1 { throw error }
            return nil
        }
        let length = lf - view.startIndex
        var line = buffer.readBytes(length: length + 1) ?? []
        line.removeLast()
        guard line.last == UInt8(ascii: "\r") else { throw ProtocolError(status: 400, reason: "bare LF in chunked body") }
        line.removeLast()
        if line.contains(UInt8(ascii: "\r")) { throw ProtocolError(status: 400, reason: "bare CR") }
        return line
    }

    private static func parseChunkSize(_ line: [UInt8]) throws(ProtocolError) -> Int {
        let sizePart = line.prefix { $0 != UInt8(ascii: ";") }
        // Whitespace before extensions is tolerated (BWS); the hex digits themselves are strict.
        let digits = sizePart.reversed().drop(while: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }).reversed()
        guard !digits.isEmpty, digits.count <= 15 else { throw ProtocolError(status: 400, reason: "invalid chunk size") }
        var size = 0
        for c in digits {
            guard let v = PercentDecoding.hexDigitValue(c) else { throw ProtocolError(status: 400, reason: "invalid chunk size") }
            size = size << 4 | Int(v)
        }
        if sizePart.count < line.count {
            let extensions = line[(sizePart.count + 1)...]
            guard extensions.allSatisfy({ $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw ProtocolError(status: 400, reason: "invalid chunk extension")
            }
        }
        return size
    }

    // MARK: - Character classes

    /// tchar (RFC 9110 §5.6.2). A switch the compiler turns into a table: it runs for every byte
    /// of every method and header name.
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
