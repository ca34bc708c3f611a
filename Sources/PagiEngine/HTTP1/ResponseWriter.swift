import NIOCore
import PagiCore

/// Serialises a `Response` onto a channel: the head into one buffer (with the body when it is in
/// memory, so small responses leave in one write), file bodies as `FileRegion`s (sendfile(2)).
/// FileRegions must only ever reach a plain-TCP HTTP/1.1 pipeline: TLS or compression handlers
/// crash the process on them (see MEASURED-FACTS).
struct ResponseWriter {
    let serverHeader: String

    /// Bytes of body actually put on the wire (for the access log).
    struct Outcome {
        var bodyBytes: Int
    }

    func write(_ response: Response, isHead: Bool, keepAlive: Bool, http10Client: Bool, date: String,
               context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) -> Outcome {
        let status = response.status
        // A 101 keeps the handler's `Connection: Upgrade`; for every other status the writer owns it.
        let switching = status == 101
        let bodyAllowed = status >= 200 && status != 204 && status != 304
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(response.headers.count + 4)
        if !response.headers.contains("Server") { fields.append(("Server", serverHeader)) }
        fields.append(("Date", date))
        for field in response.headers where !Self.isFramingField(field.name) || (switching && field.name.asciiCaseInsensitiveEquals("connection")) {
            fields.append(field)
        }
        if bodyAllowed {
            if case .stream = response.body {
                // Unknown length: chunked for HTTP/1.1; an HTTP/1.0 client reads until the close.
                if !http10Client { fields.append(("Transfer-Encoding", "chunked")) }
            } else {
                fields.append(("Content-Length", String(response.body.length)))
            }
        }
        if switching {
            // The handler's own Connection/Upgrade fields are among its headers.
        } else if !keepAlive {
            fields.append(("Connection", "close"))
        } else if http10Client {
            fields.append(("Connection", "keep-alive"))
        }
        let inlineBody: [UInt8]? = if bodyAllowed && !isHead, case .bytes(let bytes) = response.body { bytes } else { nil }
        let head = Self.serializeHead(statusLine: Self.statusLine(status), fields: fields, body: inlineBody,
                                      allocator: context.channel.allocator)

        guard bodyAllowed && !isHead else {
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
            return Outcome(bodyBytes: 0)
        }
        switch response.body {
        case .empty, .stream:
            // A stream's chunks follow from its `BodySink`.
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
        case .bytes:
            // Already copied behind the head: small responses leave in one write.
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
        case .file(let file, let offset, let length):
            context.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
            writeFile(file, slices: [(nil, offset, length)], trailer: nil, context: context, promise: promise)
        case .multipart(let file, let parts, let trailer):
            context.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
            writeFile(file, slices: parts.map { ($0.preamble, $0.offset, $0.length) }, trailer: trailer,
                      context: context, promise: promise)
        }
        return Outcome(bodyBytes: response.body.length)
    }

    private func writeFile(_ file: OpenFile, slices: [(preamble: [UInt8]?, offset: Int, length: Int)], trailer: [UInt8]?,
                           context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let descriptor = file.take() else {
            // Already sent once (a handler reused its response): fail rather than send garbage.
            context.close(promise: nil)
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        for slice in slices {
            if let preamble = slice.preamble {
                context.write(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(bytes: preamble))), promise: nil)
            }
            if slice.length > 0 {
                let region = FileRegion(fileHandle: handle, readerIndex: slice.offset, endIndex: slice.offset + slice.length)
                context.write(NIOAny(IOData.fileRegion(region)), promise: nil)
            }
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        if let trailer {
            context.write(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(bytes: trailer))), promise: done)
        } else {
            context.write(NIOAny(IOData.byteBuffer(ByteBuffer())), promise: done)
        }
        context.flush()
        done.futureResult.whenComplete { _ in try? handle.close() }
        if let promise { done.futureResult.cascade(to: promise) }
    }

    /// `HTTP/1.1 200 OK\r\n`, built once per status code.
    private static let statusLines: [Int: String] = Dictionary(uniqueKeysWithValues: (100...599).map { status in
        (status, "HTTP/1.1 \(status) \(ErrorResponses.reasonPhrase(status))\r\n")
    })

    private static func statusLine(_ status: Int) -> String {
        statusLines[status] ?? "HTTP/1.1 \(status) \(ErrorResponses.reasonPhrase(status))\r\n"
    }

    /// The head (and a small body) copied into one buffer sized up front: a head is built for every
    /// response, and one capacity check with plain copies costs a fraction of a ByteBuffer write
    /// call per piece.
    private static func serializeHead(statusLine: String, fields: [(name: String, value: String)], body: [UInt8]?,
                                      allocator: ByteBufferAllocator) -> ByteBuffer {
        var length = statusLine.utf8.count + 2 + (body?.count ?? 0)
        for field in fields { length += field.name.utf8.count + field.value.utf8.count + 4 }
        var buffer = allocator.buffer(capacity: length)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { destination in
            guard let start = destination.baseAddress else { return 0 }
            var cursor = start
            func copy(_ text: String) {
                let copied: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
                    if let source = bytes.baseAddress { cursor.copyMemory(from: source, byteCount: bytes.count) }
                    cursor += bytes.count
                }
                if copied == nil {
                    for byte in text.utf8 {
                        cursor.storeBytes(of: byte, as: UInt8.self)
                        cursor += 1
                    }
                }
            }
            func copy(_ a: UInt8, _ b: UInt8) {
                cursor.storeBytes(of: a, as: UInt8.self)
                (cursor + 1).storeBytes(of: b, as: UInt8.self)
                cursor += 2
            }
            copy(statusLine)
            for field in fields {
                copy(field.name)
                copy(UInt8(ascii: ":"), UInt8(ascii: " "))
                copy(field.value)
                copy(UInt8(ascii: "\r"), UInt8(ascii: "\n"))
            }
            copy(UInt8(ascii: "\r"), UInt8(ascii: "\n"))
            if let body {
                body.withUnsafeBytes { bytes in
                    if let source = bytes.baseAddress { cursor.copyMemory(from: source, byteCount: bytes.count) }
                    cursor += bytes.count
                }
            }
            return cursor - start
        }
        return buffer
    }

    /// Fields the writer computes itself; a handler's copy would contradict the real framing.
    private static func isFramingField(_ name: String) -> Bool {
        name.asciiCaseInsensitiveEquals("content-length") || name.asciiCaseInsensitiveEquals("transfer-encoding")
            || name.asciiCaseInsensitiveEquals("connection") || name.asciiCaseInsensitiveEquals("date")
    }
}
