/// The `text/event-stream` wire format (WHATWG HTML §9.2).
enum ServerSentEvent {
    /// One event: `event:` when named, `id:`, one `data:` line per line of `data` (a CR, LF or
    /// CRLF in it starts a new line, so the client rebuilds the same text with LF), blank line.
    static func encode(id: String, event: String?, data: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 32)
        if let event {
            out += Array("event: ".utf8) + Array(event.utf8)
            out.append(lf)
        }
        out += Array("id: ".utf8) + Array(id.utf8)
        out.append(lf)
        out += dataPrefix
        var previous: UInt8 = 0
        for byte in data {
            if byte == lf && previous == cr {
                // The second half of a CRLF: the line was already ended at the CR.
            } else if byte == cr || byte == lf {
                out.append(lf)
                out += dataPrefix
            } else {
                out.append(byte)
            }
            previous = byte
        }
        out += [lf, lf]
        return out
    }

    /// Tells the client how long to wait before reconnecting.
    static func retry(milliseconds: Int) -> [UInt8] { Array("retry: \(milliseconds)\n\n".utf8) }

    /// A comment line: ignored by clients, keeps proxies and NATs from closing an idle stream.
    static let keepalive = Array(": keepalive\n\n".utf8)

    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")
    private static let dataPrefix = Array("data: ".utf8)
}
