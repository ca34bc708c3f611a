import Foundation

/// Syntax of addresses, networks and host names as written in the config file.
public enum NetworkSyntax {
    /// An RFC 9110 token (header names, methods).
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }

    public static func ipv4Bytes(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { part -> UInt8? in
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit) else { return nil }
            return UInt8(part)
        }
        return bytes.count == 4 ? bytes : nil
    }

    /// RFC 4291 text form, including `::` and a trailing dotted IPv4 part.
    public static func ipv6Bytes(_ text: Substring) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            guard !part.isEmpty else { return [] }
            var bytes: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if index == fields.count - 1, field.contains("."), let v4 = ipv4Bytes(field) {
                    bytes += v4
                } else {
                    guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                    bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
                }
            }
            return bytes
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 16 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// `10.0.0.0/8`, `2001:db8::/32`, or a single address (full-length prefix).
    static func cidr(_ text: String) -> CIDR? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = ipv4Bytes(parts[0]) ?? ipv6Bytes(parts[0]) else { return nil }
        let maxLength = bytes.count * 8
        guard parts.count == 2 else { return CIDR(bytes: bytes, prefixLength: maxLength) }
        guard parts[1].allSatisfy(\.isASCIIDigit), let length = Int(parts[1]), (0...maxLength).contains(length) else { return nil }
        return CIDR(bytes: bytes, prefixLength: length)
    }

    enum ListenSyntaxError: Error {
        case malformed
        case badPort(String)
    }

    /// `host:port`, `[v6]:port`, `:port` or `unix:/path.sock`.
    static func listenAddress(_ text: String) -> Result<ListenConfig.Address, ListenSyntaxError> {
        if text.hasPrefix("unix:") {
            let path = text.dropFirst("unix:".count)
            return path.isEmpty ? .failure(.malformed) : .success(.unix(path: String(path)))
        }
        guard let colon = text.lastIndex(of: ":") else { return .failure(.malformed) }
        var host = text[..<colon]
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), ipv6Bytes(host.dropFirst().dropLast()) != nil else { return .failure(.malformed) }
            host = host.dropFirst().dropLast()
        } else if !host.isEmpty {
            guard ipv4Bytes(host) != nil || isHostName(host) else { return .failure(.malformed) }
        }
        guard portText.allSatisfy(\.isASCIIDigit), let port = Int(portText), (0...65535).contains(port) else {
            return .failure(.badPort(String(portText)))
        }
        return .success(.tcp(host: String(host), port: port))
    }

    /// A DNS name (labels of letters, digits, `-`, `_`), case-insensitive.
    public static func isHostName(_ name: Substring) -> Bool {
        guard !name.isEmpty, name.count <= 253 else { return false }
        let trimmed = name.hasSuffix(".") ? name.dropLast() : name
        return trimmed.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    /// A virtual-host name: a DNS name, `*.suffix`, `*`, or an IP literal (`[::1]` for IPv6).
    static func isVirtualHostName(_ name: String) -> Bool {
        if name == "*" { return true }
        if name.hasPrefix("*.") { return isHostName(name.dropFirst(2)) }
        if name.hasPrefix("["), name.hasSuffix("]") { return ipv6Bytes(name.dropFirst().dropLast()) != nil }
        return isHostName(Substring(name))
    }
}
