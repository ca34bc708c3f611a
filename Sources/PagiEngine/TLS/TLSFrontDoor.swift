import NIOCore
import NIOSSL
import NIOTLS

/// The first handler of a TLS connection (docs/tls.md). A TLS connection begins with a handshake
/// record (byte 0x16); anything else is plain HTTP sent to the TLS port by mistake, answered
/// with a 400 that says so — as nginx and Caddy do — and closed. A handshake goes on to NIOTLS's
/// `SNIHandler`, which reads the name the client asks for and installs the TLS handler with
/// the certificate chosen for it (`CertificateSelector`).
final class TLSFrontDoor: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let handshakeRecord: UInt8 = 0x16
    private static let plainHTTPAnswer: [UInt8] = {
        let body = "This port speaks HTTPS: use https:// to reach it\n"
        return Array(("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8)
    }()

    /// The handlers a TLS connection starts with, in front of the HTTP/1.1 ones; `session` learns
    /// what the handshake chose. With `http2`, ALPN offers `h2` first, and a client that takes it
    /// gets `http2` to replace the HTTP/1.1 handlers.
    static func install(on channel: any Channel, session: TLSSession,
                        http2: ((any Channel) throws -> Void)?) throws {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(TLSFrontDoor(), position: .first)
        let sni = ByteToMessageHandler(SNIHandler { result in
            let name: String? = if case .hostname(let name) = result { name } else { nil }
            let handler = NIOSSLServerHandler(context: session.choose(serverName: name))
            return channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                // Right behind the SNI handler, which then leaves and hands it the handshake.
                try pipeline.addHandler(handler, position: .after(pipeline.handler(type: ByteToMessageHandler<SNIHandler>.self)))
                guard let http2 else { return }
                try pipeline.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
                    guard case .negotiated("h2") = result else { return channel.eventLoop.makeSucceededVoidFuture() }
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        pipeline.removeHandler(try pipeline.handler(type: HTTPConnectionHandler.self), promise: nil)
                        pipeline.removeHandler(try pipeline.handler(type: SlowReaderGuard.self), promise: nil)
                        try http2(channel)
                    }
                }, position: .after(handler))
            }
        })
        try pipeline.addHandler(sni, position: .after(pipeline.handler(type: TLSFrontDoor.self)))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        if first == Self.handshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        let answer = context.channel.allocator.buffer(bytes: Self.plainHTTPAnswer)
        context.writeAndFlush(wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
