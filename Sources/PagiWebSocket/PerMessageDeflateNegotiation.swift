import PagiCore

/// What both ends agreed on for permessage-deflate (RFC 7692 §7.1).
struct DeflateParameters: Sendable, Equatable {
    /// The server resets its compressor after every message.
    var serverNoContextTakeover = false
    /// The client resets its compressor after every message (so may the server's decompressor).
    var clientNoContextTakeover = false
    /// The largest window the server's compressor may use (`server_max_window_bits`), if limited.
    var serverMaxWindowBits: Int?

    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    var responseValue: String {
        var value = "permessage-deflate"
        if serverNoContextTakeover { value += "; server_no_context_takeover" }
        if clientNoContextTakeover { value += "; client_no_context_takeover" }
        if let bits = serverMaxWindowBits { value += "; server_max_window_bits=\(bits)" }
        return value
    }
}

/// Picks the first permessage-deflate offer of a `Sec-WebSocket-Extensions` request header that
/// this server can honour; offers with unknown, repeated or out-of-range parameters are declined
/// (RFC 7692 §5, §7.1). Hand-written: NIOWebSocket has no extension support, and
/// swift-websocket's negotiation is tied to its own (non-public) handler.
enum PerMessageDeflateNegotiation {
    static func negotiate(_ headerValues: [String]) -> DeflateParameters? {
        for offer in headerValues.flatMap(splitOffers) {
            guard offer.name.lowercased() == "permessage-deflate" else { continue }
            if let accepted = accept(offer.parameters) { return accepted }
        }
        return nil
    }

    private struct Offer {
        var name: String
        var parameters: [(name: String, value: String?)]
    }

    private static func accept(_ parameters: [(name: String, value: String?)]) -> DeflateParameters? {
        var agreed = DeflateParameters()
        var seen = Set<String>()
        for (rawName, value) in parameters {
            let name = rawName.lowercased()
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                agreed.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                agreed.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = windowBits(value) else { return nil }
                agreed.serverMaxWindowBits = bits
            case "client_max_window_bits":
                // The client may limit its own window; our decompressor always has room for 15 bits.
                if let value, windowBits(value) == nil { return nil }
            default:
                return nil
            }
        }
        return agreed
    }

    /// 8…15 written as plain digits (no sign, no leading zero).
    private static func windowBits(_ text: String) -> Int? {
        guard let first = text.first, first != "0", text.allSatisfy(\.isASCIIDigit), let bits = Int(text),
              (8...15).contains(bits) else { return nil }
        return bits
    }

    /// `a; x=1, b` → [a (x=1), b]; parameter values may be quoted strings.
    private static func splitOffers(_ header: String) -> [Offer] {
        var offers: [Offer] = []
        for element in splitOutsideQuotes(Substring(header), separator: ",") {
            let parts = splitOutsideQuotes(element, separator: ";").map { $0.trimmingOWS }
            guard let name = parts.first, !name.isEmpty else { continue }
            let parameters = parts.dropFirst().filter { !$0.isEmpty }.map { part -> (name: String, value: String?) in
                guard let equals = part.firstIndex(of: "=") else { return (part, nil) }
                var value = part[part.index(after: equals)...].trimmingOWS
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                    value = String(value.dropFirst().dropLast())
                }
                return (part[..<equals].trimmingOWS, value)
            }
            offers.append(Offer(name: name, parameters: parameters))
        }
        return offers
    }

    private static func splitOutsideQuotes(_ text: Substring, separator: Character) -> [Substring] {
        var pieces: [Substring] = []
        var start = text.startIndex
        var quoted = false
        for index in text.indices {
            let character = text[index]
            if character == "\"" {
                quoted.toggle()
            } else if character == separator && !quoted {
                pieces.append(text[start..<index])
                start = text.index(after: index)
            }
        }
        pieces.append(text[start...])
        return pieces
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
