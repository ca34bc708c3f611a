import CZlib

/// A zlib deflate stream producing gzip (RFC 1952) or zlib-wrapped deflate (RFC 1950, what HTTP
/// calls `deflate`). Written on the system zlib because the mirror's compress-nio works on NIO
/// buffers, which the middleware layer does not use. Not thread-safe: one owner at a time.
final class Deflater {
    enum Format { case gzip, deflate }

    /// Heap-allocated: zlib keeps a pointer back to its stream and checks it on every call.
    private let stream: UnsafeMutablePointer<z_stream>

    init?(_ format: Format, level: Int) {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let windowBits: Int32 = format == .gzip ? 15 + 16 : 15
        let status = deflateInit2_(stream, Int32(level), Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Compresses `input`, appending what zlib produces to `output`; `finish` ends the stream.
    func compress(_ input: UnsafeRawBufferPointer, finish: Bool, into output: inout [UInt8]) {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        let chunk = 32 * 1024
        while true {
            let start = output.count
            output.append(contentsOf: repeatElement(0, count: chunk))
            let status = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
                stream.pointee.next_out = buffer.baseAddress.map { $0 + start }
                stream.pointee.avail_out = uInt(chunk)
                return deflate(stream, finish ? Z_FINISH : Z_NO_FLUSH)
            }
            let unused = Int(stream.pointee.avail_out)
            output.removeLast(unused)
            // Done when zlib left room in the output (it has nothing more to say for now), or
            // reported the end of the stream; a stream error cannot happen with a valid state.
            if status == Z_STREAM_END || status == Z_STREAM_ERROR || (unused > 0 && !finish) { return }
            if finish && status == Z_BUF_ERROR && unused > 0 { return }
        }
    }

    /// `bytes` compressed in one go.
    static func compress(_ bytes: [UInt8], _ format: Format, level: Int) -> [UInt8]? {
        guard let deflater = Deflater(format, level: level) else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count / 3 + 64)
        bytes.withUnsafeBytes { deflater.compress($0, finish: true, into: &output) }
        return output
    }
}
