import PagiCore

/// Turns a parsed head into the `Request` handlers see, applying the RFC 9112 rules that need the
/// whole head: the request-target forms (§3.2), the `Host` field (§3.2.2), and method knowledge.
enum RequestValidation {
    /// `knownMethods`: methods answered at all, from the routing table; others get 501 (RFC 9110
    /// §9.1). GET, always among them, skips the set lookup (hashing a string): it is most requests.
    /// With `routesUnknownMethods` (some route answers every method itself: `openapi`), unknown
    /// methods go on to routing, which answers 501 itself outside such routes.
    static func makeRequest(_ head: RequestHead, clientAddress: String, knownMethods: Set<String>,
                            routesUnknownMethods: Bool = false) throws(ProtocolError) -> Request {
        guard head.method == "GET" || routesUnknownMethods || knownMethods.contains(head.method), head.method != "CONNECT" else {
            throw ProtocolError(status: 501, reason: "method not implemented")
        }
        var hostField: String?
        for field in head.headers where field.name.asciiCaseInsensitiveEquals("host") {
            guard hostField == nil else { throw ProtocolError(status: 400, reason: "more than one Host field") }
            hostField = field.value
        }
        if head.versionMinor >= 1 && hostField == nil {
            throw ProtocolError(status: 400, reason: "missing Host field")
        }
        var host = ""
        if let value = hostField {
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
        // Scanned as bytes, in one pass: Character iteration costs hundreds of instructions per character.
        let (queryOffset, fragmentOffset) = pathAndQuery.withUTF8Bytes { bytes -> (Int?, Int?) in
            var query: Int?
            for (offset, byte) in bytes.enumerated() {
                if byte == UInt8(ascii: "#") { return (query, offset) }
                if byte == UInt8(ascii: "?") && query == nil { query = offset }
            }
            return (query, nil)
        }
        let utf8 = pathAndQuery.utf8
        if let fragmentOffset {
            // A fragment is never sent by a conforming client; drop it rather than route on it.
            pathAndQuery = pathAndQuery[..<utf8.index(utf8.startIndex, offsetBy: fragmentOffset)]
        }
        let queryStart = queryOffset.map { utf8.index(utf8.startIndex, offsetBy: $0) }
        let rawPath = queryStart.map { pathAndQuery[..<$0] } ?? pathAndQuery
        let query = queryStart.map { String(pathAndQuery[utf8.index(after: $0)...]) }
        let path: PercentDecoding.NormalizedPath
        switch PercentDecoding.normalizePath(String(rawPath)) {
        case .success(let normalized): path = normalized
        case .failure(.aboveRoot): throw ProtocolError(status: 400, reason: "path climbs above the root")
        case .failure(.malformed): throw ProtocolError(status: 400, reason: "malformed path")
        }
        var request = Request(method: head.method, target: target, path: path.path, query: query, versionMinor: head.versionMinor,
                              headers: HeaderFields(head.headers), host: host, clientAddress: clientAddress)
        request.pathHasEncodedSeparators = path.hasEncodedSeparators
        return request
    }

    /// The lower-cased host of an authority (`host[:port]`, `[v6]:port`), or nil if it is malformed.
    /// Userinfo is refused: it has no place in a request and is a classic confusion vector.
    /// Works on the UTF-8 bytes: it runs for every request.
    static func hostName(ofAuthority authority: String, allowEmpty: Bool) -> String? {
        let bytes = authority.utf8
        guard let first = bytes.first else { return allowEmpty ? "" : nil }
        // The common case, a lower-case name without port: already its own answer, no copy.
        let isFinal = authority.withUTF8Bytes { name in
            name.last != UInt8(ascii: ".") && name.allSatisfy { isRegNameByte($0) && !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) }
        }
        if isFinal { return authority }
        var hostBytes: Substring.UTF8View
        var portBytes: Substring.UTF8View?
        if first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            hostBytes = Substring(authority).utf8[bytes.index(after: bytes.startIndex)..<close]
            let after = Substring(authority).utf8[bytes.index(after: close)...]
            if let colon = after.first {
                guard colon == UInt8(ascii: ":") else { return nil }
                portBytes = after.dropFirst()
            }
            guard !hostBytes.isEmpty, hostBytes.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return nil }
        } else {
            hostBytes = Substring(authority).utf8[...]
            if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
                hostBytes = Substring(authority).utf8[..<colon]
                portBytes = Substring(authority).utf8[bytes.index(after: colon)...]
            }
            // reg-name (RFC 3986 §3.2.2): unreserved, pct-encoded and sub-delims; IPv4 fits in it too.
            guard !hostBytes.isEmpty, hostBytes.allSatisfy(isRegNameByte) else { return nil }
        }
        if let portBytes {
            guard portBytes.count <= 5, portBytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        }
        var name = Substring(hostBytes)
        if name.utf8.last == UInt8(ascii: ".") { name = name.dropLast() }
        // Most clients already send lower case: skip the copy then.
        let hasUpper = name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        return hasUpper ? name.lowercased() : String(name)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        PercentDecoding.hexDigitValue(byte) != nil
    }

    private static func isRegNameByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"), UInt8(ascii: "!"),
             UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"),
             UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }
}
