import NIOCore

/// The first bytes of an HTTP/2 connection (RFC 9113 §3.4): on a cleartext listener they mean
/// HTTP/2 by prior knowledge (h2c), as `curl --http2-prior-knowledge` and gRPC clients send.
enum HTTP2Preface {
    static let bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    enum Match { case yes, notYet, no }

    /// Whether `buffer` starts with the preface; `notYet` while what arrived is a beginning of it.
    static func match(_ buffer: ByteBuffer) -> Match {
        let count = min(buffer.readableBytes, bytes.count)
        guard let start = buffer.getBytes(at: buffer.readerIndex, length: count), start.elementsEqual(bytes.prefix(count)) else {
            return .no
        }
        return count == bytes.count ? .yes : .notYet
    }
}
