import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client that records when each read arrived and how the connection ended
/// (EOF or the errno of a failed read), for tests of deliberately misbehaving responses.
public final class TimedSocket {
    private let fd: Int32

    /// One `recv` that returned data.
    public struct Arrival: Sendable {
        public var bytes: [UInt8]
        public var at: ContinuousClock.Instant
    }

    /// How reading stopped.
    public enum End: Equatable, Sendable {
        case eof
        case error(Int32)
        case timeout
    }

    public init(port: Int, timeout: Double = 5) throws {
        fd = try connectToLoopback(port: port, timeout: timeout)
    }

    deinit { close(fd) }

    public func send(_ text: String) { sendAll(fd, Array(text.utf8)) }

    /// Reads until the peer closes, a read fails, or nothing arrives for the timeout.
    public func readAll() -> (arrivals: [Arrival], end: End) {
        var arrivals: [Arrival] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                arrivals.append(Arrival(bytes: Array(chunk[0..<n]), at: .now))
            } else if n == 0 {
                return (arrivals, .eof)
            } else {
                let code = errno
                return (arrivals, code == EAGAIN || code == EWOULDBLOCK ? .timeout : .error(code))
            }
        }
    }

    /// Reads until `complete` says the bytes so far are enough, or the peer stops sending.
    public func read(until complete: ([UInt8]) -> Bool) -> [Arrival] {
        var arrivals: [Arrival] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !complete(arrivals.flatMap(\.bytes)) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            arrivals.append(Arrival(bytes: Array(chunk[0..<n]), at: .now))
        }
        return arrivals
    }
}

/// Splits a raw HTTP/1.1 response with a chunked body into head text and decoded body;
/// nil while the terminating zero-size chunk has not arrived.
public func decodeChunkedResponse(_ bytes: [UInt8]) -> (head: String, body: [UInt8])? {
    let separator: [UInt8] = [13, 10, 13, 10]
    guard let headEnd = bytes.indices.first(where: { Array(bytes[$0..<min($0 + 4, bytes.count)]) == separator }) else { return nil }
    var position = headEnd + 4
    var body: [UInt8] = []
    while true {
        guard let lineEnd = bytes[position...].indices.first(where: { $0 + 1 < bytes.count && bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
              let size = Int(String(decoding: bytes[position..<lineEnd], as: UTF8.self), radix: 16)
        else { return nil }
        position = lineEnd + 2
        if size == 0 { return (String(decoding: bytes[0..<headEnd], as: UTF8.self), body) }
        guard position + size + 2 <= bytes.count else { return nil }
        body += bytes[position..<position + size]
        position += size + 2
    }
}

/// A TCP socket connected to 127.0.0.1:`port`, whose reads time out after `timeout` seconds.
public func connectToLoopback(port: Int, timeout: Double) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else {
        close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}

/// Writes all of `bytes`, or stops at the first failed write (the peer is gone).
public func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return }
        offset += n
    }
}
