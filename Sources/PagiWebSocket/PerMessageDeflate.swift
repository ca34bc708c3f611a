import CompressNIO
import NIOCore

/// The permessage-deflate codec of one connection (RFC 7692 §7.2), on compress-nio's zlib
/// streams. The streams are created on first use: an idle connection costs no zlib memory.
final class PerMessageDeflate {
    enum Failure: Error {
        /// The inflated message would exceed the size limit.
        case tooLarge
        /// The peer's data is not valid deflate.
        case corrupt
    }

    let parameters: DeflateParameters
    private var compressor: ZlibCompressor?
    private var decompressor: ZlibDecompressor?
    /// The four bytes a sync flush ends with; stripped on the wire (§7.2.1), restored before inflating.
    private static let syncTail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
    /// Room made in the message buffer before each inflate call.
    private static let inflateChunk = 64 * 1024

    init(parameters: DeflateParameters) {
        self.parameters = parameters
    }

    /// Compresses one whole message (which must not be empty) into a frame payload.
    func compress(_ message: ByteBuffer, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let compressor = try self.compressor ?? makeCompressor()
        self.compressor = compressor
        var input = message
        var output = allocator.buffer(capacity: compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .sync)
        if output.readableBytes >= 4 { output.moveWriterIndex(to: output.writerIndex - 4) }
        if parameters.serverNoContextTakeover { try compressor.reset() }
        return output
    }

    /// Inflates one frame's payload of a compressed message onto `message`, keeping the whole
    /// message within `limit` bytes. `isFinal`: the message's last frame.
    func decompress(_ payload: ByteBuffer, isFinal: Bool, into message: inout ByteBuffer, limit: Int) throws {
        let decompressor = try self.decompressor ?? ZlibDecompressor(algorithm: .deflate, windowSize: 15)
        self.decompressor = decompressor
        var input = payload
        if isFinal { input.writeBytes(Self.syncTail) }
        guard input.readableBytes > 0 else { return }
        while true {
            // Inflate straight into the message; one byte of room past the limit reveals an overflow.
            message.reserveCapacity(minimumWritableBytes: min(Self.inflateChunk, limit - message.readableBytes + 1))
            var outputFull = false
            let (inputBefore, outputBefore) = (input.readableBytes, message.readableBytes)
            do {
                try decompressor.inflate(from: &input, to: &message)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                outputFull = true
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                // No progress possible without more input: the frame is fully consumed.
            } catch {
                throw Failure.corrupt
            }
            guard message.readableBytes <= limit else { throw Failure.tooLarge }
            // Output may still be pending inside zlib even when all input was consumed.
            if !outputFull && input.readableBytes == 0 { break }
            // A pass that neither consumed input nor produced output never will (bytes after the
            // end of a deflate stream): a hostile peer must not spin this event loop forever.
            if input.readableBytes == inputBefore && message.readableBytes == outputBefore { throw Failure.corrupt }
        }
        if isFinal && parameters.clientNoContextTakeover { try decompressor.reset() }
    }

    private func makeCompressor() throws -> ZlibCompressor {
        // zlib cannot produce a raw deflate stream with an 8-bit window, but a 9-bit window never
        // emits distances beyond 250 bytes (window minus zlib's 262-byte lookahead), so it fits
        // a peer that asked for 8.
        let bits = Int32(max(9, parameters.serverMaxWindowBits ?? 15))
        let level: Int32 = 6
        let memory: Int32 = 8
        return try ZlibCompressor(algorithm: .deflate,
                                  configuration: ZlibConfiguration(windowSize: bits, compressionLevel: level, memoryLevel: memory))
    }
}
