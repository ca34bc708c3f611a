/// Percent-decoding and path normalisation (RFC 3986 §5.2.4), written by hand because no listed
/// package exposes a strict decoder that rejects encoded NUL/slash the way a file server must.
public enum PercentDecoding {
    /// Decodes `%XX` escapes; nil for a malformed escape or a result that is not valid UTF-8.
    public static func decode(_ string: String) -> String? {
        decodeBytes(Array(string.utf8), plusIsSpace: false).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// `application/x-www-form-urlencoded` decoding for query strings (`+` is a space).
    public static func decodeForm(_ string: String) -> String? {
        decodeBytes(Array(string.utf8), plusIsSpace: true).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Like `decodeForm`, but bytes that are not UTF-8 become U+FFFD: for showing a value (templates),
    /// never for comparing it.
    public static func decodeFormLossy(_ string: String) -> String? {
        decodeBytes(Array(string.utf8), plusIsSpace: true).map { String(decoding: $0, as: UTF8.self) }
    }

    static func decodeBytes(_ input: [UInt8], plusIsSpace: Bool) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let byte = input[i]
            if byte == UInt8(ascii: "%") {
                guard i + 2 < input.count, let hi = hexDigitValue(input[i + 1]), let lo = hexDigitValue(input[i + 2]) else {
                    return nil
                }
                output.append(hi << 4 | lo)
                i += 3
            } else {
                output.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                i += 1
            }
        }
        return output
    }

    public static func hexDigitValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    public enum PathError: Error, Sendable, Equatable {
        /// Malformed escape, invalid UTF-8 or NUL.
        case malformed
        /// `..` segments that climb above `/`.
        case aboveRoot
    }

    /// The path routes match on, and whether a segment carried an encoded `/` or `\`.
    public struct NormalizedPath: Sendable, Equatable {
        public var path: String
        /// Some segment held `%2F` or `%5C`: `path` keeps them encoded (`%` itself as `%25`), so
        /// its `/` are still exactly the separators the client sent (docs/architecture.md, "Paths").
        public var hasEncodedSeparators: Bool
    }

    /// Turns the path part of a request target into the path routes match on: percent-decoded,
    /// with `.` and `..` segments resolved and duplicate slashes merged (as nginx does). NUL is
    /// refused. A segment with an encoded `/` or `\` keeps its escapes (see `NormalizedPath`), so
    /// a decoded path never has more segments than the client sent; `static` refuses such paths.
    public static func normalizePath(_ rawPath: String) -> Result<NormalizedPath, PathError> {
        if isAlreadyNormal(rawPath) { return .success(NormalizedPath(path: rawPath, hasEncodedSeparators: false)) }
        let raw = Array(rawPath.utf8)
        guard raw.first == UInt8(ascii: "/") else { return .failure(.malformed) }
        // Split on literal slashes first so `%2F` can be told apart from a separator.
        var segments: [String] = []
        var endsWithSlash = false
        var hasEncodedSeparators = false
        let parts = raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        for (index, part) in parts.enumerated() {
            let isLast = index == parts.count - 1
            guard var decoded = decodeBytes(Array(part), plusIsSpace: false), !decoded.contains(0) else { return .failure(.malformed) }
            if !hasEncodedSeparators, decoded.contains(UInt8(ascii: "/")) || decoded.contains(UInt8(ascii: "\\")) {
                // From here on every segment keeps `%`, `/` and `\` escaped, the earlier ones too.
                hasEncodedSeparators = true
                segments = segments.map { $0.replacingOccurrences(of: "%", with: "%25") }
            }
            if hasEncodedSeparators { decoded = escapingSeparators(decoded) }
            guard let segment = String(validating: decoded, as: UTF8.self) else { return .failure(.malformed) }
            switch segment {
            case ".":
                if isLast { endsWithSlash = true }
            case "..":
                guard !segments.isEmpty else { return .failure(.aboveRoot) }
                segments.removeLast()
                if isLast { endsWithSlash = true }
            case "":
                if isLast { endsWithSlash = true }
            default:
                segments.append(segment)
                if isLast { endsWithSlash = false }
            }
        }
        var path = "/" + segments.joined(separator: "/")
        if endsWithSlash && !segments.isEmpty { path += "/" }
        return .success(NormalizedPath(path: path, hasEncodedSeparators: hasEncodedSeparators))
    }

    /// A decoded segment with `%`, `/` and `\` escaped again.
    private static func escapingSeparators(_ segment: [UInt8]) -> [UInt8] {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(segment.count + 8)
        for byte in segment {
            switch byte {
            case UInt8(ascii: "%"): escaped += Array("%25".utf8)
            case UInt8(ascii: "/"): escaped += Array("%2F".utf8)
            case UInt8(ascii: "\\"): escaped += Array("%5C".utf8)
            default: escaped.append(byte)
            }
        }
        return escaped
    }

    /// The common case, checked in one pass without allocating: visible ASCII without escapes or
    /// backslashes, no empty segment and no `.`/`..` segment. Such a path normalises to itself.
    static func isAlreadyNormal(_ path: String) -> Bool {
        var utf8 = path.utf8.makeIterator()
        guard utf8.next() == UInt8(ascii: "/") else { return false }
        // Length of the current segment, and whether it is all dots so far.
        var segmentLength = 0
        var allDots = true
        while let byte = utf8.next() {
            if byte == UInt8(ascii: "/") {
                if segmentLength == 0 || (allDots && segmentLength <= 2) { return false }
                segmentLength = 0
                allDots = true
                continue
            }
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "%"), byte != UInt8(ascii: "\\") else { return false }
            segmentLength += 1
            if byte != UInt8(ascii: ".") { allDots = false }
        }
        return !(allDots && segmentLength > 0 && segmentLength <= 2)
    }
}
