import PagiCore

/// Turns a parsed head into the `Request` handlers see, applying the RFC 9112 rules that need the
/// whole head: the request-target forms (§3.2), the `Host` field (§3.2.2), and method knowledge.
struct RequestValidation: Sendable {
    /// Methods answered at all; others get 501 (RFC 9110 §9.1). Includes every method a route names.
    let knownMethods: Set<String>

    static let standardMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT"]

    func makeRequest(_ head: RequestHead, clientAddress: String) throws(ProtocolError) -> Request {
        guard knownMethods.contains(head.method), head.method != "CONNECT" else {
            throw ProtocolError(status: 501, reason: "method not implemented")
        }
        let hostFields = head.headers.filter { $0.name.asciiCaseInsensitiveEquals("host") }
        guard hostFields.count <= 1 else { throw ProtocolError(status: 400, reason: "more than one Host field") }
        if head.versionMinor >= 1 && hostFields.isEmpty {
            throw ProtocolError(status: 400, reason: "missing Host field")
        }
        var host = ""
        if let value = hostFields.first?.value {
            guard let name = Self.hostName(ofAuthority: value, allowEmpty: true) else {
                throw ProtocolError(status: 400, reason: "invalid Host field")
            }
            host = name
        }

        var pathAndQuery: Substring
        let target = head.target
        if target == "*" {
            guard head.method == "OPTIONS" else { throw ProtocolError(status: 400, reason: "asterisk-form needs OPTIONS") }
            return Request(method: head.method, target: target, path: "*", query: nil, versionMinor: head.versionMinor,
                           headers: HeaderFields(head.headers), host: host, clientAddress: clientAddress)
        } else if target.hasPrefix("/") {
            pathAndQuery = Substring(target)
        } else if let schemeEnd = target.range(of: "://") {
            // Absolute form: the authority in the target replaces Host (RFC 9112 §3.2.2).
            let scheme = target[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" || scheme == "https" else { throw ProtocolError(status: 400, reason: "unsupported URI scheme") }
            let rest = target[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            guard let name = Self.hostName(ofAuthority: String(rest[..<authorityEnd]), allowEmpty: false) else {
                throw ProtocolError(status: 400, reason: "invalid authority in request target")
            }
            host = name
            let remainder = rest[authorityEnd...]
            pathAndQuery = remainder.hasPrefix("/") ? remainder : Substring("/" + remainder)
        } else {
            throw ProtocolError(status: 400, reason: "invalid request target")
        }
        if let hash = pathAndQuery.firstIndex(of: "#") {
            // A fragment is never sent by a conforming client; drop it rather than route on it.
            pathAndQuery = pathAndQuery[..<hash]
        }
        let queryStart = pathAndQuery.firstIndex(of: "?")
        let rawPath = queryStart.map { pathAndQuery[..<$0] } ?? pathAndQuery
        let query = queryStart.map { String(pathAndQuery[pathAndQuery.index(after: $0)...]) }
        let path: String
        switch PercentDecoding.normalizePath(String(rawPath)) {
        case .success(let normalized): path = normalized
        case .failure(.aboveRoot): throw ProtocolError(status: 400, reason: "path climbs above the root")
        case .failure(.malformed): throw ProtocolError(status: 400, reason: "malformed path")
        }
        return Request(method: head.method, target: target, path: path, query: query, versionMinor: head.versionMinor,
                       headers: HeaderFields(head.headers), host: host, clientAddress: clientAddress)
    }

    /// The lower-cased host of an authority (`host[:port]`, `[v6]:port`), or nil if it is malformed.
    /// Userinfo is refused: it has no place in a request and is a classic confusion vector.
    static func hostName(ofAuthority authority: String, allowEmpty: Bool) -> String? {
        if authority.isEmpty { return allowEmpty ? "" : nil }
        var hostPart = Substring(authority)
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portPart = after.dropFirst()
            }
            guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            }
            // reg-name (RFC 3986 §3.2.2): unreserved, pct-encoded and sub-delims; IPv4 fits in it too.
            let allowed = hostPart.utf8.allSatisfy { c in
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                    || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || "-._~%!$&'()*+,;=".utf8.contains(c)
            }
            guard !hostPart.isEmpty, allowed else { return nil }
        }
        if let portPart {
            guard portPart.count <= 5, portPart.allSatisfy(\.isASCIIDigitCharacter) else { return nil }
        }
        var name = hostPart.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }
}

extension Character {
    var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
