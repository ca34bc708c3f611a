#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PagiConfig

/// `server.trusted_proxies` (docs/configuration.md §4.3): what a proxy says about the client —
/// `Forwarded` (RFC 7239), else `X-Forwarded-For/-Proto/-Host` — is believed only when the peer
/// is one of these networks. A chain is read from the right: the first hop that is not itself a
/// trusted proxy is the client (everything left of it could have been written by the client).
public struct TrustedProxies: Sendable {
    public let networks: [CIDR]

    public init(_ networks: [CIDR]) { self.networks = networks }

    public var isEmpty: Bool { networks.isEmpty }

    /// Sets the request's client address (and scheme and forwarded host, when the proxy that
    /// met the client says them) from what the trusted peer forwarded. `peer` is the peer's IP text.
    public func apply(to request: inout Request, peer: String) {
        request.clientAddress = peer
        guard !networks.isEmpty, contains(peer) else { return }
        request.context.trustedPeer = peer
        let hops: [Hop]
        if let forwarded = request.headers.combinedValue("Forwarded") {
            hops = Self.forwardedHops(forwarded)
        } else if let forwardedFor = request.headers.combinedValue("X-Forwarded-For") {
            let protos = Self.list(request.headers.combinedValue("X-Forwarded-Proto"))
            let hosts = Self.list(request.headers.combinedValue("X-Forwarded-Host"))
            let addresses = Self.list(forwardedFor)
            // Per-hop values line up with the addresses only when each proxy appended one of each;
            // otherwise the one value set by the proxy in front of everything is the client's.
            hops = addresses.enumerated().map { index, address in
                Hop(address: address,
                    proto: protos.count == addresses.count ? protos[index] : protos.first,
                    host: hosts.count == addresses.count ? hosts[index] : hosts.first)
            }
        } else {
            return
        }
        // Walk from the right; stop at the first hop that is not a trusted proxy, or that is no
        // address at all (`unknown`, an obfuscated name): nothing left of it can be checked.
        var client: Hop?
        for hop in hops.reversed() {
            client = hop
            guard Self.ipBytes(hop.address) != nil, contains(hop.address) else { break }
        }
        guard let client, Self.ipBytes(client.address) != nil else { return }
        request.clientAddress = client.address
        if let proto = client.proto.flatMap({ RequestContext.Scheme(rawValue: $0.lowercased()) }) { request.context.scheme = proto }
        if let host = client.host, Self.isHostValue(host) { request.context.forwardedHost = host.lowercased() }
    }

    struct Hop {
        var address: String
        var proto: String?
        var host: String?
    }

    /// `Forwarded: for=192.0.2.60;proto=https;host=a.com, for="[2001:db8::1]:4711"`.
    private static func forwardedHops(_ value: String) -> [Hop] {
        value.split(separator: ",").map { element in
            var hop = Hop(address: "")
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let name = parts[0].trimmingOWS.lowercased()
                let raw = String(parts[1].trimmingOWS)
                let unquoted = raw.count >= 2 && raw.hasPrefix("\"") && raw.hasSuffix("\"") ? String(raw.dropFirst().dropLast()) : raw
                switch name {
                case "for": hop.address = nodeAddress(unquoted)
                case "proto": hop.proto = unquoted
                case "host": hop.host = unquoted
                default: break
                }
            }
            return hop
        }
    }

    private static func list(_ value: String?) -> [String] {
        value?.split(separator: ",").map { String($0.trimmingOWS) } ?? []
    }

    /// `[2001:db8::1]:4711` → `2001:db8::1`; `192.0.2.60:80` → `192.0.2.60` (RFC 7239 §6).
    private static func nodeAddress(_ node: String) -> String {
        if node.hasPrefix("["), let close = node.firstIndex(of: "]") {
            return String(node[node.index(after: node.startIndex)..<close])
        }
        if node.filter({ $0 == ":" }).count == 1, let colon = node.firstIndex(of: ":") { return String(node[..<colon]) }
        return node
    }

    /// A host name, optionally with a port: no spaces, slashes or other delimiters.
    private static func isHostValue(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 255 && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || "-.:[]".utf8.contains(byte)
        }
    }

    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.ipBytes(address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address in text form; nil for anything else.
    public static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            // An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) is that IPv4 address.
            if bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
            return bytes
        }
        return nil
    }
}

extension Request {
    /// `proxies.apply(to:peer:)` on this request in place (the engine builds requests in place:
    /// a copy would retain and release every string in them).
    public mutating func believeForwarding(from proxies: TrustedProxies, peer: String) {
        proxies.apply(to: &self, peer: peer)
    }
}
