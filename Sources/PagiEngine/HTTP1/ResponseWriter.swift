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
        var head = context.channel.allocator.buffer(capacity: 256 + response.headers.count * 48)
        head.writeStaticString("HTTP/1.1 ")
        head.writeString(String(status))
        head.writeStaticString(" ")
        head.writeString(ErrorResponses.reasonPhrase(status))
        head.writeStaticString("\r\n")
        if !response.headers.contains("Server") {
            head.writeStaticString("Server: ")
            head.writeString(serverHeader)
            head.writeStaticString("\r\n")
        }
        head.writeStaticString("Date: ")
        head.writeString(date)
        head.writeStaticString("\r\n")
        // A 101 keeps the handler's `Connection: Upgrade`; for every other status the writer owns it.
        let switching = status == 101
        for field in response.headers where !Self.isFramingField(field.name) || (switching && field.name.asciiCaseInsensitiveEquals("connection")) {
            head.writeString(field.name)
            head.writeStaticString(": ")
            head.writeString(field.value)
            head.writeStaticString("\r\n")
        }
        let bodyAllowed = status >= 200 && status != 204 && status != 304
        if bodyAllowed {
            if case .stream = response.body {
                // Unknown length: chunked for HTTP/1.1; an HTTP/1.0 client reads until the close.
                if !http10Client { head.writeStaticString("Transfer-Encoding: chunked\r\n") }
            } else {
                head.writeStaticString("Content-Length: ")
                head.writeString(String(response.body.length))
                head.writeStaticString("\r\n")
            }
        }
        if switching {
            // The handler's own Connection/Upgrade fields were written above.
        } else if !keepAlive {
            head.writeStaticString("Connection: close\r\n")
        } else if http10Client {
            head.writeStaticString("Connection: keep-alive\r\n")
        }
        head.writeStaticString("\r\n")

        guard bodyAllowed && !isHead else {
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
            return Outcome(bodyBytes: 0)
        }
        switch response.body {
        case .empty, .stream:
            // A stream's chunks follow from its `BodySink`.
            context.writeAndFlush(NIOAny(IOData.byteBuffer(head)), promise: promise)
        case .bytes(let bytes):
            head.writeBytes(bytes)
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

    /// Fields the writer computes itself; a handler's copy would contradict the real framing.
    private static func isFramingField(_ name: String) -> Bool {
        name.asciiCaseInsensitiveEquals("content-length") || name.asciiCaseInsensitiveEquals("transfer-encoding")
            || name.asciiCaseInsensitiveEquals("connection") || name.asciiCaseInsensitiveEquals("date")
    }
}
