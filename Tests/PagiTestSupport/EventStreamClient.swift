import Foundation

/// One Server-Sent Event as a browser's EventSource would see it.
public struct ReceivedEvent: Equatable, Sendable {
    public var id: String?
    public var event: String?
    public var data: String

    public init(id: String?, event: String?, data: String) {
        self.id = id
        self.event = event
        self.data = data
    }
}

/// An EventSource-like reader on a raw socket: sends the GET, checks the head, then de-chunks
/// the body and parses `text/event-stream` (WHATWG HTML §9.2) as it arrives.
public final class EventStreamClient {
    public let raw: RawClient
    public private(set) var status = 0
    public private(set) var headers: [(String, String)] = []
    /// The de-chunked body received so far, as text (for exact framing checks).
    public private(set) var received: [UInt8] = []
    private var parsed = 0
    public private(set) var comments: [String] = []
    public private(set) var retry: Int?
    private var pendingEvent = ReceivedEvent(id: nil, event: nil, data: "")
    private var dataLines: [String] = []
    private var sawData = false
    private var queued: [ReceivedEvent] = []
    /// The last chunk (`0\r\n\r\n`) arrived: the server ended the stream cleanly.
    public private(set) var streamFinished = false

    public init(port: Int, path: String, headers extra: [String: String] = [:], timeout: Double = 5) throws {
        raw = try RawClient(port: port, timeout: timeout)
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
        for (name, value) in extra { request += "\(name): \(value)\r\n" }
        raw.send(request + "\r\n")
        guard let end = readHeadEnd() else { throw POSIXError(.ETIMEDOUT) }
        let lines = String(decoding: raw.buffer[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        raw.buffer.removeFirst(end + 4)
        status = Int(lines[0].split(separator: " ")[1]) ?? 0
        headers = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

    /// The next dispatched event, or nil when the stream ended or nothing came before the timeout.
    public func next() -> ReceivedEvent? {
        while true {
            parseLines()
            if !queued.isEmpty { return queued.removeFirst() }
            guard readMore() else { return nil }
        }
    }

    /// The next `count` events (fewer if the stream ends or stalls).
    public func next(_ count: Int) -> [ReceivedEvent] {
        var events: [ReceivedEvent] = []
        while events.count < count, let event = next() { events.append(event) }
        return events
    }

    /// Reads until `predicate` holds for what was received, the stream ends, or a read times out.
    @discardableResult
    public func readUntil(_ predicate: (EventStreamClient) -> Bool) -> Bool {
        while !predicate(self) {
            guard readMore() else { return false }
            parseLines()
        }
        return true
    }

    /// The server closed the stream (a last chunk or EOF) before `timeout` of silence.
    public func waitForEnd() -> Bool {
        while readMore() {}
        return raw.closedByPeer || streamFinished
    }


    private func readHeadEnd() -> Int? {
        while true {
            let bytes = raw.buffer
            if bytes.count >= 4 {
                for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
                    return i
                }
            }
            guard raw.fill() else { return nil }
        }
    }

    /// De-chunks what the socket has; false when nothing more can come.
    private func readMore() -> Bool {
        guard !streamFinished else { return false }
        if !dechunk() {
            guard raw.fill() else { return false }
            _ = dechunk()
        }
        return true
    }

    /// Moves complete chunks from the socket buffer to `received`; true if any was moved.
    private func dechunk() -> Bool {
        var moved = false
        while let lineEnd = findCRLF(in: raw.buffer, from: 0) {
            let sizeText = String(decoding: raw.buffer[0..<lineEnd], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";")[0], radix: 16) else { return moved }
            if size == 0 {
                streamFinished = true
                return true
            }
            guard raw.buffer.count >= lineEnd + 2 + size + 2 else { return moved }
            received += raw.buffer[(lineEnd + 2)..<(lineEnd + 2 + size)]
            raw.buffer.removeFirst(lineEnd + 2 + size + 2)
            moved = true
        }
        return moved
    }

    private func findCRLF(in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= start + 2 else { return nil }
        for i in start..<(bytes.count - 1) where bytes[i] == 13 && bytes[i + 1] == 10 { return i }
        return nil
    }

    /// Parses every complete line received so far, queueing dispatched events.
    private func parseLines() {
        while let newline = received[parsed...].firstIndex(of: 10) {
            let line = String(decoding: received[parsed..<newline], as: UTF8.self)
            parsed = newline + 1
            if line.isEmpty {
                if sawData {
                    pendingEvent.data = dataLines.joined(separator: "\n")
                    queued.append(pendingEvent)
                }
                pendingEvent = ReceivedEvent(id: nil, event: nil, data: "")
                dataLines = []
                sawData = false
                continue
            }
            if line.hasPrefix(":") {
                comments.append(String(line.dropFirst()).trimmingCharacters(in: .whitespaces))
                continue
            }
            let (field, value) = Self.split(line)
            switch field {
            case "data": dataLines.append(value); sawData = true
            case "id": pendingEvent.id = value
            case "event": pendingEvent.event = value
            case "retry": retry = Int(value)
            default: break
            }
        }
    }

    private static func split(_ line: String) -> (String, String) {
        guard let colon = line.firstIndex(of: ":") else { return (line, "") }
        var value = line[line.index(after: colon)...]
        if value.first == " " { value = value.dropFirst() }
        return (String(line[..<colon]), String(value))
    }

    public var receivedText: String { String(decoding: received, as: UTF8.self) }
}

extension RawClient {
    /// One POST on a new connection.
    public static func post(port: Int, _ path: String, body: [UInt8]) -> RawResponse? {
        guard let client = try? RawClient(port: port) else { return nil }
        client.send(Array("POST \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        return client.readResponse()
    }
}
