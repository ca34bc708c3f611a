/// Conditional requests (RFC 9110 §13) against one representation's validators.
public enum ConditionalRequest {
    public enum Outcome: Sendable, Equatable {
        case proceed
        /// `304`: only for GET and HEAD.
        case notModified
        /// `412`.
        case preconditionFailed
    }

    /// Evaluates the preconditions in the order of RFC 9110 §13.2.2 (steps 1–4; `If-Range` is
    /// `rangeApplies`). `etag` is the representation's strong entity-tag, quotes included;
    /// `lastModified` is in epoch seconds.
    public static func evaluate(method: String, headers: HeaderFields, etag: String, lastModified: Int) -> Outcome {
        let isRead = method == "GET" || method == "HEAD"
        if let ifMatch = headers.combinedValue("If-Match") {
            guard EntityTagList(ifMatch).matches(etag, weakComparison: false) else { return .preconditionFailed }
        } else if let ifUnmodifiedSince = singleDate("If-Unmodified-Since", in: headers),
                  lastModified > ifUnmodifiedSince {
            return .preconditionFailed
        }
        if let ifNoneMatch = headers.combinedValue("If-None-Match") {
            if EntityTagList(ifNoneMatch).matches(etag, weakComparison: true) {
                return isRead ? .notModified : .preconditionFailed
            }
        } else if isRead, let ifModifiedSince = singleDate("If-Modified-Since", in: headers),
                  lastModified <= ifModifiedSince {
            return .notModified
        }
        return .proceed
    }

    /// Whether a `Range` header may be honoured: true without `If-Range`, else when its entity-tag
    /// matches strongly or its date is exactly the `Last-Modified` date (RFC 9110 §13.1.5).
    public static func rangeApplies(headers: HeaderFields, etag: String, lastModified: Int) -> Bool {
        guard let ifRange = headers["If-Range"]?.trimmingOWS else { return true }
        if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") {
            return EntityTagList(String(ifRange)).matches(etag, weakComparison: false)
        }
        return HTTPDate.parse(String(ifRange)) == lastModified
    }

    /// A date field is ignored when invalid or repeated (RFC 9110 §13.1.3).
    private static func singleDate(_ name: String, in headers: HeaderFields) -> Int? {
        var value: String?
        for field in headers where field.name.asciiCaseInsensitiveEquals(name) {
            guard value == nil else { return nil }
            value = field.value
        }
        return value.flatMap { HTTPDate.parse(String($0.trimmingOWS)) }
    }
}

/// `*` or a comma-separated list of entity-tags (`"x"`, `W/"x"`). Parsed by hand because an
/// opaque tag may itself contain commas; on a byte array with integer offsets, since it runs for
/// every revalidation.
struct EntityTagList {
    struct Tag: Equatable {
        var isWeak: Bool
        /// Including the quotes.
        var opaque: Substring
    }

    private(set) var isWildcard = false
    private let bytes: [UInt8]
    /// Each member: weak or not, and where its opaque tag (quotes included) lies in `bytes`.
    private var members: [(isWeak: Bool, opaque: Range<Int>)] = []

    var tags: [Tag] {
        members.map { Tag(isWeak: $0.isWeak, opaque: Substring(String(decoding: bytes[$0.opaque], as: UTF8.self))) }
    }

    init(_ value: String) {
        bytes = Array(value.utf8)
        let star = bytes.firstIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
        if let star, bytes[star] == UInt8(ascii: "*"),
           bytes[(star + 1)...].allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
            isWildcard = true
            return
        }
        members = Self.parse(bytes)
    }

    private static func parse(_ bytes: [UInt8]) -> [(isWeak: Bool, opaque: Range<Int>)] {
        var members: [(isWeak: Bool, opaque: Range<Int>)] = []
        var index = 0
        let end = bytes.count
        while true {
            while index < end, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") || bytes[index] == UInt8(ascii: ",") {
                index += 1
            }
            guard index < end else { return members }
            let isWeak = index + 1 < end && bytes[index] == UInt8(ascii: "W") && bytes[index + 1] == UInt8(ascii: "/")
            if isWeak { index += 2 }
            // A malformed member ends the list: what came before still counts.
            guard index < end, bytes[index] == UInt8(ascii: "\"") else { return members }
            var close = index + 1
            while close < end, bytes[close] != UInt8(ascii: "\"") { close += 1 }
            guard close < end else { return members }
            members.append((isWeak, index..<(close + 1)))
            index = close + 1
        }
    }

    /// `*` matches any current representation; strong comparison needs both tags strong.
    /// `etag` is the server's own, well-formed tag (`"x"` or `W/"x"`), so it is not parsed as a list.
    func matches(_ etag: String, weakComparison: Bool) -> Bool {
        if isWildcard { return true }
        var etag = etag
        return etag.withUTF8 { current in
            let currentIsWeak = current.starts(with: "W/".utf8)
            let opaque = UnsafeBufferPointer(rebasing: current[(currentIsWeak ? 2 : 0)...])
            return bytes.withUnsafeBufferPointer { listed in
                members.contains { member in
                    (weakComparison || (!member.isWeak && !currentIsWeak))
                        && UnsafeBufferPointer(rebasing: listed[member.opaque]).elementsEqual(opaque)
                }
            }
        }
    }
}
