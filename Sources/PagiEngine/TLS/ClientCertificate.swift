import NIOCore
import NIOSSL
import X509

/// The verified client certificate of a TLS connection (`client_ca`, docs/tls.md): its subject
/// goes to templates (`{{client_subject}}`) and to the JSON access log. NIOSSL gives the
/// certificate but not its names: swift-certificates reads them.
enum ClientCertificate {
    /// The subject of the certificate the client presented and the handshake verified, as an
    /// RFC 4514 string (`CN=alice,O=Example`); nil without one.
    static func subject(in pipeline: ChannelPipeline.SynchronousOperations) -> String? {
        guard let handler = try? pipeline.handler(type: NIOSSLServerHandler.self),
              let certificate = handler.peerCertificate,
              let der = try? certificate.toDERBytes(),
              let parsed = try? Certificate(derEncoded: der) else { return nil }
        return parsed.subject.description
    }
}
