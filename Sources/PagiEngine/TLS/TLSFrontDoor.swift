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
    /// A fatal `internal_error` alert (RFC 8446 §6): what a client gets for a name whose ACME
    /// certificate is not obtained yet — the clear refusal Caddy gives too, rather than another
    /// site's certificate.
    private static let noCertificateAlert: [UInt8] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80]
    private let session: TLSSession
    /// The start of the client's hello, while it is read whole for `ClientHelloALPN`.
    private var firstRecord: ByteBuffer?

    init(session: TLSSession) {
        self.session = session
    }
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
        try pipeline.addHandler(TLSFrontDoor(session: session), position: .first)
        let sni = ByteToMessageHandler(SNIHandler { result in
            let name: String? = if case .hostname(let name) = result { name } else { nil }
            guard let context = session.choose(serverName: name) else { return refuse(channel) }
            let handler = NIOSSLServerHandler(context: context)
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

    /// Answers the hello with `noCertificateAlert` and closes. The SNI handler stays (its future
    /// fails), so the hello never reaches the HTTP handlers.
    private static func refuse(_ channel: any Channel) -> EventLoopFuture<Void> {
        let failed: EventLoopFuture<Void> = channel.eventLoop.makeFailedFuture(ChannelError.eof)
        guard let context = try? channel.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<SNIHandler>.self) else {
            channel.close(promise: nil)
            return failed
        }
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: noCertificateAlert))).whenComplete { _ in channel.close(promise: nil) }
        return failed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var start = firstRecord.take() {
            start.writeBuffer(&bytes)
            bytes = start
        }
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        if first == Self.handshakeRecord {
            if session.certificates.answersTLSALPNChallenges {
                // The hello's first record whole (at most 16 KiB + 5; the handshake timeout bounds
                // the wait): a connection's first reads are small (`IdleLightReadBuffers`).
                let length = bytes.getInteger(at: bytes.readerIndex + 3, as: UInt16.self).map { 5 + Int($0) }
                guard let length, bytes.readableBytes >= length else {
                    firstRecord = bytes
                    return
                }
                session.offersACMEChallenge = ClientHelloALPN.offers("acme-tls/1", in: bytes)
            }
            context.fireChannelRead(wrapInboundOut(bytes))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        let answer = context.channel.allocator.buffer(bytes: Self.plainHTTPAnswer)
        context.writeAndFlush(wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
