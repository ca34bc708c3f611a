#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import PagiCore

/// Serialises a `Response` onto a channel: the head into one buffer (with the body when it is in
/// memory, so small responses leave in one write), file bodies as `FileRegion`s (sendfile(2)).
/// FileRegions must only ever reach a plain-TCP HTTP/1.1 pipeline: a FileRegion that reaches
/// NIOSSL's handler, HTTP/2 or NIO's compressor is a fatal error that ends the process (measured),
/// so the `compress` middleware turns file bodies into streams before they get here, and a TLS
/// connection passes a `fileReader`: its files are read in chunks off the event loop.
struct ResponseWriter {
    /// `Server: …` CRLF, unless a handler sets its own; empty with `server_header: false`.
    private let serverLine: [UInt8]

    init(serverHeader: String?) {
        serverLine = serverHeader.map { Array("Server: \($0)\r\n".utf8) } ?? []
    }

    /// Bytes of body actually put on the wire (for the access log).
    struct Outcome {
        var bodyBytes: Int
        /// Part of the body is written after `write` returns (a file read in chunks, or sent a slice
        /// per turn of the loop): nothing else may be written on the connection until `promise`
        /// completes, or a pipelined answer would land inside this one.
        var bodyFollows = false
    }

    func write(_ response: Response, isHead: Bool, keepAlive: Bool, http10Client: Bool, date: String,
               fileReader: NonBlockingFileIO?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) -> Outcome {
        let status = response.status
        let bodyAllowed = status >= 200 && status != 204 && status != 304
        // A 101 keeps the handler's `Connection: Upgrade`; for every other status the writer owns it.
        let lines = status == 101 ? FieldLines(response.headers, keepingConnection: true)
            : response.headers.fieldLines ?? FieldLines(response.headers)
        var framing = Framing.none
        if bodyAllowed {
            switch response.body {
            case .stream(let stream) where stream.length != nil:
                framing = .length(stream.length ?? 0)
            case .stream, .omitted(length: nil):
                // Unknown length: chunked for HTTP/1.1; an HTTP/1.0 client reads until the close.
                if !http10Client { framing = .chunked }
            default:
                framing = .length(response.body.length)
            }
        }
        let connection: StaticString? = status == 101 ? nil
            : !keepAlive ? "Connection: close\r\n" : http10Client ? "Connection: keep-alive\r\n" : nil
        let inlineBody: [UInt8]? = if bodyAllowed && !isHead, case .bytes(let bytes) = response.body { bytes } else { nil }
        let head = serializeHead(status: status, lines: lines, date: date, framing: framing, connection: connection,
                                 body: inlineBody, allocator: context.channel.allocator)

        guard bodyAllowed && !isHead else {
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
            return Outcome(bodyBytes: 0)
        }
        switch response.body {
        case .empty, .stream, .omitted:
            // A stream's chunks follow from its `BodySink`.
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
        case .bytes:
            // Already copied behind the head: small responses leave in one write.
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
        case .file(let file, let offset, let length):
            let follows = writeFile(file, after: head, slices: [(nil, offset, length)], trailer: nil, reader: fileReader, context: context,
                                    promise: promise)
            return Outcome(bodyBytes: length, bodyFollows: follows)
        case .multipart(let file, let parts, let trailer):
            let follows = writeFile(file, after: head, slices: parts.map { ($0.preamble, $0.offset, $0.length) }, trailer: trailer,
                                    reader: fileReader, context: context, promise: promise)
            return Outcome(bodyBytes: response.body.length, bodyFollows: follows)
        }
        return Outcome(bodyBytes: response.body.length)
    }

    private enum Framing {
        case none
        case chunked
        case length(Int)
    }

    /// Returns whether part of the body is written later (`Outcome.bodyFollows`).
    private func writeFile(_ file: OpenFile, after head: ByteBuffer, slices: [FileChunks.Slice], trailer: [UInt8]?,
                           reader: NonBlockingFileIO?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) -> Bool {
        guard let descriptor = file.take() else {
            // Already sent once (a handler reused its response): fail rather than send garbage.
            context.close(promise: nil)
            promise?.fail(ChannelError.ioOnClosedChannel)
            return false
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        let done = promise ?? context.eventLoop.makePromise(of: Void.self)
        if let reader {
            context.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
            FileChunks.send(handle, slices: slices[...], trailer: trailer, reader: reader, context: context, promise: done) { bytes, _ in
                NIOAny(IOData.byteBuffer(bytes))
            }
            return true
        }
        var pieces: [IOData] = [.byteBuffer(head)]
        for slice in slices {
            if let preamble = slice.preamble { pieces.append(.byteBuffer(context.channel.allocator.buffer(bytes: preamble))) }
            var offset = slice.offset
            while offset < slice.offset + slice.length {
                let end = min(offset + Self.sendfileTurn, slice.offset + slice.length)
                pieces.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: offset, endIndex: end)))
                offset = end
            }
        }
        if let trailer { pieces.append(.byteBuffer(context.channel.allocator.buffer(bytes: trailer))) }
        let turns = Self.turns(pieces)
        Self.send(turns[...], handle: handle, context: context, done: done)
        return turns.count > 1
    }

    /// At most this much of a file goes to sendfile(2) per turn of the event loop, as lighttpd does.
    /// Measured (docs/performance.md, *The 1 MiB file against lighttpd*): a whole MiB handed over at
    /// once made Linux's BBR pace nearly every segment with a timer on this VM (12 pacing timers per
    /// MiB against lighttpd's 4); in slices the 1 MiB row went 1.63× faster.
    static let sendfileTurn = 256 * 1024

    /// The pieces grouped into turns of at most `sendfileTurn` file bytes (the head and small
    /// buffers ride along with the file bytes next to them).
    private static func turns(_ pieces: [IOData]) -> [[IOData]] {
        var turns: [[IOData]] = [[]]
        var fileBytes = 0
        for piece in pieces {
            if case .fileRegion(let region) = piece {
                if fileBytes + region.readableBytes > sendfileTurn, fileBytes > 0 {
                    turns.append([])
                    fileBytes = 0
                }
                fileBytes += region.readableBytes
            }
            turns[turns.count - 1].append(piece)
        }
        return turns
    }

    /// Writes one turn — the first under the cork, so that the head leaves with the file's first
    /// bytes (lighttpd corks only there too) — and once it has left goes on with the next turn on a
    /// later pass of the loop (other connections are served in between). `done` completes after the
    /// last turn, the cork out and the file closed first.
    private static func send(_ turns: ArraySlice<[IOData]>, handle: NIOFileHandle, context: ChannelHandlerContext,
                             done: EventLoopPromise<Void>, first: Bool = true) {
        guard let turn = turns.first, let last = turn.last else {
            try? handle.close()
            done.succeed()
            return
        }
        if first { cork(true, context) }
        for piece in turn.dropLast() { context.write(NIOAny(piece), promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(NIOAny(last), promise: written)
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { result in
            if first { cork(false, context) }
            switch result {
            case .success where turns.count > 1:
                context.eventLoop.assumeIsolated().execute {
                    send(turns.dropFirst(), handle: handle, context: context, done: done, first: false)
                }
            case .success:
                try? handle.close()
                done.succeed()
            case .failure(let error):
                try? handle.close()
                done.fail(error)
            }
        }
    }

    /// TCP_CORK around the head and a file's first slice (nginx's `tcp_nopush`): they leave in full
    /// segments, and the rest goes out when the cork is pulled. Without it, with TCP_NODELAY, the
    /// kernel pushes each piece `sendfile` hands it as its own segment, and the client spends its
    /// time on many small segments: measured, a 1 MiB file went to wrk at ~60 % of nginx's rate.
    private static func cork(_ on: Bool, _ context: ChannelHandlerContext) {
        #if os(Linux)
        let option = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_CORK))
        try? context.channel.syncOptions?.setOption(option, value: on ? 1 : 0)
        #endif
    }

    /// `HTTP/1.1 200 OK\r\n`, built once per status code (index: status − 100).
    private static let statusLines: [[UInt8]] = (100...599).map { status in
        Array("HTTP/1.1 \(status) \(ErrorResponses.reasonPhrase(status))\r\n".utf8)
    }

    private static func statusLine(_ status: Int) -> [UInt8] {
        (100...599).contains(status) ? statusLines[status - 100] : Array("HTTP/1.1 \(status) \(ErrorResponses.reasonPhrase(status))\r\n".utf8)
    }

    /// The head (and a small body) copied into one buffer sized up front: a head is built for every
    /// response, and one capacity check with plain copies costs a fraction of a ByteBuffer write
    /// call per piece.
    private func serializeHead(status: Int, lines: FieldLines, date: String, framing: Framing, connection: StaticString?,
                               body: [UInt8]?, allocator: ByteBufferAllocator) -> ByteBuffer {
        let statusLine = Self.statusLine(status)
        var length = statusLine.count + lines.bytes.count + 8 + date.utf8.count + 2 + (body?.count ?? 0)
        if !lines.hasServer { length += serverLine.count }
        switch framing {
        case .none: break
        case .chunked: length += Self.chunked.utf8CodeUnitCount
        case .length(let count): length += Self.contentLength.utf8CodeUnitCount + HeadCursor.decimalDigits(count) + 2
        }
        if let connection { length += connection.utf8CodeUnitCount }
        var buffer = allocator.buffer(capacity: length)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { destination in
            guard let start = destination.baseAddress else { return 0 }
            var cursor = HeadCursor(start)
            cursor.append(statusLine)
            if !lines.hasServer { cursor.append(serverLine) }
            cursor.append("Date: " as StaticString)
            cursor.append(date)
            cursor.append("\r\n" as StaticString)
            cursor.append(lines.bytes)
            switch framing {
            case .none: break
            case .chunked: cursor.append(Self.chunked)
            case .length(let count):
                cursor.append(Self.contentLength)
                cursor.appendDecimal(count)
                cursor.append("\r\n" as StaticString)
            }
            if let connection { cursor.append(connection) }
            cursor.append("\r\n" as StaticString)
            if let body { cursor.append(body) }
            return cursor.pointer - start
        }
        return buffer
    }

    private static let chunked: StaticString = "Transfer-Encoding: chunked\r\n"
    private static let contentLength: StaticString = "Content-Length: "
}

/// Copies pieces of a head into memory sized beforehand. A struct with mutating methods rather
/// than a nested function capturing the position: the capture was a boxed variable with a
/// run-time exclusivity check on every piece.
private struct HeadCursor {
    var pointer: UnsafeMutableRawPointer

    init(_ start: UnsafeMutableRawPointer) { pointer = start }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        pointer.copyMemory(from: source, byteCount: bytes.count)
        pointer += bytes.count
    }

    mutating func appendDecimal(_ value: Int) {
        var remaining = value
        let digits = Self.decimalDigits(value)
        for offset in stride(from: digits - 1, through: 0, by: -1) {
            (pointer + offset).storeBytes(of: UInt8(ascii: "0") + UInt8(remaining % 10), as: UInt8.self)
            remaining /= 10
        }
        pointer += digits
    }

    static func decimalDigits(_ value: Int) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }
}
