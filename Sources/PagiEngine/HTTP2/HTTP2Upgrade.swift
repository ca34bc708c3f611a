import NIOCore
import NIOHPACK
import NIOHTTP2
import PagiCore

/// HTTP/2 by `Upgrade: h2c` on a cleartext listener (RFC 7540 §3.2; docs/http2.md), as
/// `curl --http2` and `nghttp -u` ask for it on `http://` URLs. RFC 9113 deprecates the mechanism,
/// but clients still use it; a request that cannot be upgraded (a body, no `HTTP2-Settings`) is
/// simply answered over HTTP/1.1, which RFC 9110 §7.8 allows.
///
/// NIOHTTP2 has no server side of it — its connection cannot start with stream 1 already open —
/// so the upgrade request is handed to it as if the client had sent it on stream 1 right after its
/// preface (`UpgradedRequestReplay`): a HEADERS frame encoded without touching the HPACK dynamic
/// table, so that the client's own header blocks decode as it meant them. Written by hand: no
/// listed package does this.
enum HTTP2Upgrade {
    static let switching: StaticString = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

    /// The request asks for h2c as RFC 7540 §3.2 says — `Upgrade` names `h2c`, `Connection` names
    /// `Upgrade` and `HTTP2-Settings`, exactly one `HTTP2-Settings` — and has no body to carry over.
    static func isRequested(_ head: RequestHead) -> Bool {
        // Asked of every connection's first request: without an `Upgrade` field (nearly always),
        // the answer costs one pass over the names and no allocation.
        guard head.framing == .none, head.versionMinor == 1,
              head.headers.contains(where: { $0.name.utf8.count == 7 && $0.name.asciiCaseInsensitiveEquals("upgrade") }) else { return false }
        func tokens(_ name: String) -> [String] {
            head.headers.filter { $0.name.lowercased() == name }.flatMap { $0.value.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        let connection = tokens("connection")
        return tokens("upgrade").contains("h2c") && connection.contains("upgrade") && connection.contains("http2-settings")
            && head.headers.filter { $0.name.lowercased() == "http2-settings" }.count == 1
            && head.headers.contains { $0.name.lowercased() == "host" }
    }

    /// Fields for this connection only (RFC 9113 §8.2.2), which an HTTP/2 request must not carry.
    private static let connectionFields: Set<String> = ["connection", "upgrade", "http2-settings", "host", "keep-alive",
                                                         "proxy-connection", "transfer-encoding"]

    /// The request as the HEADERS frame of stream 1 (END_STREAM: it has no body); nil when its
    /// header block would not fit one frame of the default maximum size.
    static func streamOne(_ head: RequestHead, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var encoder = HPACKEncoder(allocator: allocator)
        let authority = head.headers.first { $0.name.lowercased() == "host" }?.value ?? ""
        var fields = [(":method", head.method), (":scheme", "http"), (":authority", authority), (":path", head.target)]
        for field in head.headers {
            let name = field.name.lowercased()
            guard !connectionFields.contains(name), name != "te" || field.value.lowercased() == "trailers" else { continue }
            fields.append((name, field.value))
        }
        do {
            try encoder.beginEncoding(allocator: allocator)
            for (name, value) in fields { try encoder.appendNonIndexed(header: name, value: value) }
            let block = try encoder.endEncoding()
            guard block.readableBytes <= 16_384 else { return nil }
            var frame = allocator.buffer(capacity: 9 + block.readableBytes)
            frame.writeInteger(UInt8(truncatingIfNeeded: block.readableBytes >> 16))
            frame.writeInteger(UInt16(truncatingIfNeeded: block.readableBytes))
            frame.writeInteger(UInt8(0x1))          // HEADERS
            frame.writeInteger(UInt8(0x1 | 0x4))    // END_STREAM | END_HEADERS
            frame.writeInteger(UInt32(1))           // stream 1
            frame.writeImmutableBuffer(block)
            return frame
        } catch {
            return nil
        }
    }
}

/// Sits in front of NIOHTTP2's handler after a `101`: passes on the client's preface and its first
/// frame (the SETTINGS the preface must end with), then the upgrade request as stream 1, then
/// everything else, and leaves.
final class UpgradedRequestReplay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let request: ByteBuffer
    private var received = ByteBuffer()
    /// The preface is 24 bytes, its SETTINGS frame a 9-byte header and a payload: a client that
    /// sends more before it is not speaking HTTP/2, and NIOHTTP2 will say so.
    private static let prefaceLength = 24

    init(request: ByteBuffer) {
        self.request = request
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        let settingsHeader = received.readerIndex + Self.prefaceLength
        guard let length = received.getInteger(at: settingsHeader, as: UInt32.self).map({ Int($0 >> 8) }) else { return }
        let firstPart = Self.prefaceLength + 9 + length
        guard received.readableBytes >= firstPart, let preface = received.readSlice(length: firstPart) else {
            if received.readableBytes > Self.prefaceLength + 9 + 16_384 { pass(context) }
            return
        }
        context.fireChannelRead(wrapInboundOut(preface))
        context.fireChannelRead(wrapInboundOut(request))
        pass(context)
    }

    /// Hands on what is left and steps out of the way.
    private func pass(_ context: ChannelHandlerContext) {
        if received.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(received)) }
        received = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
