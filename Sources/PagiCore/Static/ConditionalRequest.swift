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
        if let ifMatch = fieldValue("If-Match", in: headers) {
            guard EntityTagList(ifMatch).matches(etag, weakComparison: false) else { return .preconditionFailed }
        } else if let ifUnmodifiedSince = singleDate("If-Unmodified-Since", in: headers),
                  lastModified > ifUnmodifiedSince {
            return .preconditionFailed
        }
        if let ifNoneMatch = fieldValue("If-None-Match", in: headers) {
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

    /// All lines of a list field joined, as RFC 9110 §5.3 allows.
    private static func fieldValue(_ name: String, in headers: HeaderFields) -> String? {
        headers.combinedValue(name)
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
/// opaque tag may itself contain commas; on bytes, since it runs for every revalidation.
struct EntityTagList {
    struct Tag: Equatable {
        var isWeak: Bool
        /// Including the quotes.
        var opaque: Substring

        static func == (a: Tag, b: Tag) -> Bool {
            a.isWeak == b.isWeak && a.opaque.utf8.elementsEqual(b.opaque.utf8)
        }
    }

    private(set) var isWildcard = false
    private(set) var tags: [Tag] = []

    init(_ value: String) {
        let whole = value[...]
        if whole.withoutOWS.utf8.elementsEqual("*".utf8) {
            isWildcard = true
            return
        }
        let bytes = whole.utf8
        var index = bytes.startIndex
        let end = bytes.endIndex
        func at(_ position: String.Index, is byte: Unicode.Scalar) -> Bool {
            position < end && bytes[position] == UInt8(ascii: byte)
        }
        while true {
            while index < end, at(index, is: " ") || at(index, is: "\t") || at(index, is: ",") {
                bytes.formIndex(after: &index)
            }
            guard index < end else { return }
            let isWeak = at(index, is: "W") && at(bytes.index(after: index), is: "/")
            if isWeak { index = bytes.index(index, offsetBy: 2) }
            // A malformed member ends the list: what came before still counts.
            guard at(index, is: "\"") else { return }
            var close = bytes.index(after: index)
            while close < end, bytes[close] != UInt8(ascii: "\"") { bytes.formIndex(after: &close) }
            guard close < end else { return }
            tags.append(Tag(isWeak: isWeak, opaque: whole[index...close]))
            index = bytes.index(after: close)
        }
    }

    /// `*` matches any current representation; strong comparison needs both tags strong.
    func matches(_ etag: String, weakComparison: Bool) -> Bool {
        if isWildcard { return true }
        let current = EntityTagList(etag).tags.first
        guard let current else { return false }
        return tags.contains { tag in
            tag.opaque.utf8.elementsEqual(current.opaque.utf8) && (weakComparison || (!tag.isWeak && !current.isWeak))
        }
    }
}
