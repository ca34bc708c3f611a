import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A parsed HTTP/1.1 response read off a raw socket.
public struct RawResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// Parses one response off the front of `buffer`, calling `more` for the next bytes (nil: none
    /// will come). Shared by the cleartext and the TLS test clients.
    public static func read(from buffer: inout [UInt8], head: Bool, more: () -> [UInt8]?) -> RawResponse? {
        func fill() -> Bool {
            guard let bytes = more() else { return false }
            buffer += bytes
            return true
        }
        var headEnd: Int?
        while headEnd == nil {
            if let range = findHeadEnd(buffer) { headEnd = range; break }
            guard fill() else { return nil }
        }
        guard let end = headEnd else { return nil }
        let headText = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = RawResponse(status: status, headers: headers, body: [])
        if status == 100 { return response }
        if head || status == 204 || status == 304 { return response }
        if let lengthText = response.header("Content-Length"), let length = Int(lengthText) {
            while buffer.count < length { guard fill() else { break } }
            let take = min(length, buffer.count)
            response.body = Array(buffer[0..<take])
            buffer.removeFirst(take)
        } else {
            while fill() {}
            response.body = buffer
            buffer = []
        }
        return response
    }

    private static func findHeadEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// A blocking TCP client that sends exact bytes and parses responses by hand, so tests see what
/// goes over the wire — including malformed requests no HTTP library would send.
public final class RawClient {
    private let fd: Int32
    /// Bytes read but not parsed yet (streaming readers take from it).
    public var buffer: [UInt8] = []
    public private(set) var closedByPeer = false

    public init(port: Int, timeout: Double = 5) throws {
        fd = try connectToLoopback(port: port, timeout: timeout)
    }

    deinit { close(fd) }

    public func send(_ text: String) { send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) { sendAll(fd, bytes) }

    /// Reads more bytes; false on EOF, error or timeout.
    @discardableResult
    public func fill(max: Int = 65536) -> Bool {
        var chunk = [UInt8](repeating: 0, count: max)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { closedByPeer = true }
        guard n > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Reads one response. `head` true for a response to HEAD (no body despite Content-Length).
    public func readResponse(head: Bool = false) -> RawResponse? {
        var pending = buffer
        buffer = []
        defer { buffer = pending }
        return RawResponse.read(from: &pending, head: head) { [self] in
            guard fill() else { return nil }
            defer { buffer = [] }
            return buffer
        }
    }

    /// Whether bytes (or the end of the stream) are waiting to be read, without waiting for any.
    public func hasDataWaiting() -> Bool {
        guard buffer.isEmpty else { return true }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) >= 0
    }

    /// Reads until the peer closes (true) or the read times out (false); discards the data.
    public func waitForClose() -> Bool {
        while fill() {}
        return closedByPeer
    }

    /// Reads and returns whatever arrives until close or timeout.
    public func readToEnd() -> [UInt8] {
        while fill() {}
        defer { buffer = [] }
        return buffer
    }
}

extension RawClient {
    /// One request on a new connection; `Host: localhost` unless `headers` name another host.
    public static func get(port: Int, _ path: String, headers: [String: String] = [:], method: String = "GET") -> RawResponse? {
        guard let client = try? RawClient(port: port) else { return nil }
        let host = headers.keys.contains { $0.lowercased() == "host" } ? "" : "Host: localhost\r\n"
        var request = "\(method) \(path) HTTP/1.1\r\n\(host)Connection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        client.send(request + "\r\n")
        return client.readResponse(head: method == "HEAD")
    }
}
