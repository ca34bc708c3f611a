import NIOCore
import NIOPosix

/// File bodies where sendfile(2) cannot go — a TLS connection (it cannot encrypt) or an HTTP/2
/// stream (its DATA frames carry the bytes) — read in chunks on NIO's thread pool and written in
/// order (docs/tls.md). The next chunk is read once the previous one is written, so a slow client
/// holds at most one chunk of the file in memory.
enum FileChunks {
    /// A slice of the file, after the bytes of its multipart preamble, if any.
    typealias Slice = (preamble: [UInt8]?, offset: Int, length: Int)

    static let readSize = 256 * 1024

    /// Writes `slices` of the file, then `trailer`, each piece through `wrap` (which frames it;
    /// `last` is true for the final piece); `promise` completes once the last is written, and the
    /// file is closed either way.
    static func send(_ handle: NIOFileHandle, slices: ArraySlice<Slice>, trailer: [UInt8]?, reader: NonBlockingFileIO,
                     context: ChannelHandlerContext, promise: EventLoopPromise<Void>,
                     wrap: @escaping @Sendable (_ bytes: ByteBuffer, _ last: Bool) -> NIOAny) {
        let loop = context.eventLoop
        guard let slice = slices.first else {
            try? handle.close()
            let rest = trailer.map { context.channel.allocator.buffer(bytes: $0) } ?? ByteBuffer()
            context.writeAndFlush(wrap(rest, true), promise: promise)
            return
        }
        if let preamble = slice.preamble { context.write(wrap(context.channel.allocator.buffer(bytes: preamble), false), promise: nil) }
        let bound = NIOLoopBound(context, eventLoop: loop)
        reader.readChunked(fileHandle: handle, fromOffset: Int64(slice.offset), byteCount: slice.length, chunkSize: readSize,
                           allocator: context.channel.allocator, eventLoop: loop) { chunk in
            bound.value.writeAndFlush(wrap(chunk, false))
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                send(handle, slices: slices.dropFirst(), trailer: trailer, reader: reader, context: bound.value, promise: promise, wrap: wrap)
            case .failure(let error):
                // A file that shrank or a client that left: the body cannot be completed.
                try? handle.close()
                promise.fail(error)
            }
        }
    }
}
