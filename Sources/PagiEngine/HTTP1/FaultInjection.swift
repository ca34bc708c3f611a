#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import PagiConfig

/// `respond: {fault}` on HTTP/1.1 (docs/configuration.md §9.2): a reset, a silent close, or bytes
/// that are not HTTP — each ends the connection.
enum FaultInjection {
    static func perform(_ fault: Fault, context: ChannelHandlerContext) {
        switch fault {
        case .reset:
            // SO_LINGER with a zero timeout makes close(2) send RST instead of FIN.
            if let socket = context.channel as? any SocketOptionProvider {
                socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                context.close(promise: nil)
            }
        case .empty:
            context.close(promise: nil)
        case .malformed:
            let garbage = context.channel.allocator.buffer(staticString: "HTTP/1.1 2x0 \u{1}\r\nContent-Length: -1\r\nbroken header line\r\n\r\n\u{0}")
            context.writeAndFlush(NIOAny(IOData.byteBuffer(garbage))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
