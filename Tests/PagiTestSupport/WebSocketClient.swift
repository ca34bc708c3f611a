import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One WebSocket frame as seen on the wire.
public struct WSFrame: Sendable {
    public var fin = true
    public var rsv1 = false
    public var opcode: UInt8
    public var payload: [UInt8]

    public init(fin: Bool = true, rsv1: Bool = false, opcode: UInt8, payload: [UInt8]) {
        self.fin = fin
        self.rsv1 = rsv1
        self.opcode = opcode
        self.payload = payload
    }

    public var text: String { String(decoding: payload, as: UTF8.self) }
    /// The status code of a close frame.
    public var closeCode: UInt16? {
        guard opcode == 0x8, payload.count >= 2 else { return nil }
        return UInt16(payload[0]) << 8 | UInt16(payload[1])
    }
}

/// A minimal blocking WebSocket client over a raw socket: the handshake, masked frames out,
/// frames in, so tests control every bit that goes over the wire.
public final class WebSocketClient: @unchecked Sendable {
    // @unchecked: at most one thread reads (`buffer`, `offset`) while another may only send.
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var offset = 0
    /// The handshake response.
    public private(set) var status = 0
    public private(set) var headers: [(String, String)] = []

    /// Connects and sends the opening handshake with `headers` (overriding the defaults).
    public init(port: Int, path: String = "/ws", headers extra: [String: String] = [:], timeout: Double = 5) throws {
        fd = try connectToLoopback(port: port, timeout: timeout)
        var fields = ["Host": "localhost", "Upgrade": "websocket", "Connection": "Upgrade",
                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"]
        fields.merge(extra) { $1 }
        var request = "GET \(path) HTTP/1.1\r\n"
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) where !value.isEmpty { request += "\(name): \(value)\r\n" }
        sendRaw(Array((request + "\r\n").utf8))
        try readHandshakeResponse()
    }

    deinit { close(fd) }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    // MARK: Frames out

    public func send(text: String) { send(WSFrame(opcode: 0x1, payload: Array(text.utf8))) }
    public func send(binary: [UInt8]) { send(WSFrame(opcode: 0x2, payload: binary)) }

    /// Sends `frame`, masked unless `masked` is false (a protocol violation on purpose).
    public func send(_ frame: WSFrame, masked: Bool = true) {
        var bytes: [UInt8] = [(frame.fin ? 0x80 : 0) | (frame.rsv1 ? 0x40 : 0) | frame.opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        let count = frame.payload.count
        if count < 126 {
            bytes.append(maskBit | UInt8(count))
        } else if count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes += [UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((count >> shift) & 0xFF)) }
        }
        if masked {
            let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            bytes += key
            bytes.reserveCapacity(bytes.count + count)
            for (index, byte) in frame.payload.enumerated() { bytes.append(byte ^ key[index & 3]) }
        } else {
            bytes += frame.payload
        }
        sendRaw(bytes)
    }

    public func sendClose(code: UInt16) {
        send(WSFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)]))
    }

    // MARK: Frames in

    /// The next frame, or nil on close/timeout.
    public func readFrame() -> WSFrame? {
        guard let head = take(2) else { return nil }
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            guard let extended = take(2) else { return nil }
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            guard let extended = take(8) else { return nil }
            length = extended.reduce(0) { $0 << 8 | Int($1) }
        }
        guard let payload = take(length) else { return nil }
        return WSFrame(fin: head[0] & 0x80 != 0, rsv1: head[0] & 0x40 != 0, opcode: head[0] & 0x0F, payload: payload)
    }

    /// The next frame that is not a ping (pings from the server's keep-alive may interleave).
    public func readMessageFrame() -> WSFrame? {
        while let frame = readFrame() {
            if frame.opcode != 0x9 { return frame }
        }
        return nil
    }

    /// True when the server closed the TCP connection (rather than the read timing out).
    public func waitForTCPClose() -> Bool {
        while true {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }

    // MARK: Plumbing

    public func sendRaw(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    private func readHandshakeResponse() throws {
        var end: Int?
        while end == nil {
            if buffer.count >= 4 {
                end = (0...(buffer.count - 4)).first { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }
            }
            if end == nil { guard fill() else { throw POSIXError(.ECONNRESET) } }
        }
        guard let end else { return }
        let lines = String(decoding: buffer[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        headers = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        offset = end + 4
    }

    private func take(_ count: Int) -> [UInt8]? {
        while buffer.count - offset < count {
            guard fill() else { return nil }
        }
        let bytes = Array(buffer[offset..<offset + count])
        offset += count
        if offset > 1 << 20 {
            buffer.removeFirst(offset)
            offset = 0
        }
        return bytes
    }

    @discardableResult
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }
}
