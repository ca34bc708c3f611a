/// Picks the host for a request's host name (docs/configuration.md §7): exact names, then wildcards with the
/// longest suffix first, then `*`, then the default host.
public struct HostSelector: Sendable {
    public enum Reason: Equatable, Sendable {
        case exactName(String)
        case wildcard(String)
        case star
        case defaultHost
    }

    private var exactNames: [String: Int] = [:]
    /// `.example.org` for `*.example.org`, longest first.
    private var wildcards: [(suffix: String, name: String, host: Int)] = []
    private var starHost: Int?
    public let defaultHost: Int

    public init(names: [[String]], defaultHost: Int) {
        self.defaultHost = defaultHost
        for (host, hostNames) in names.enumerated() {
            for name in hostNames {
                if name == "*" {
                    starHost = starHost ?? host
                } else if name.hasPrefix("*.") {
                    wildcards.append((String(name.dropFirst()), name, host))
                } else if exactNames[name] == nil {
                    exactNames[name] = host
                }
            }
        }
        wildcards.sort { $0.suffix.utf8.count > $1.suffix.utf8.count }
    }

    public func select(_ rawName: String) -> (host: Int, reason: Reason) {
        let name = Self.normalized(rawName)
        if let host = exactNames[name] { return (host, .exactName(name)) }
        let nameBytes = name.utf8
        for (suffix, wildcard, host) in wildcards
        where nameBytes.count > suffix.utf8.count && nameBytes.reversed().starts(with: suffix.utf8.reversed()) {
            return (host, .wildcard(wildcard))
        }
        if let starHost { return (starHost, .star) }
        return (defaultHost, .defaultHost)
    }

    /// Lower-cases and drops a port and a final dot. The engine already passes lower-cased names
    /// without port, so the common case returns `name` itself without allocating.
    static func normalized(_ name: String) -> String {
        let needsWork = name.withUTF8Bytes { bytes in
            bytes.last == UInt8(ascii: ".")
                || bytes.contains { $0 == UInt8(ascii: ":") || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
        }
        guard needsWork else { return name }
        var host = Substring(name)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[...close]  // IPv6 literal: the port follows the bracket
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            host = host[..<colon]  // one colon: host:port (a bare IPv6 address has several)
        }
        if host.hasSuffix("."), host.count > 1 { host = host.dropLast() }
        return host.lowercased()
    }
}
