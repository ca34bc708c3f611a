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
        let values = headers.values(name)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// A date field is ignored when invalid or repeated (RFC 9110 §13.1.3).
    private static func singleDate(_ name: String, in headers: HeaderFields) -> Int? {
        let values = headers.values(name)
        guard values.count == 1 else { return nil }
        return HTTPDate.parse(String(values[0].trimmingOWS))
    }
}

/// `*` or a comma-separated list of entity-tags (`"x"`, `W/"x"`). Parsed by hand because an
/// opaque tag may itself contain commas.
struct EntityTagList {
    struct Tag: Equatable {
        var isWeak: Bool
        /// Including the quotes.
        var opaque: Substring
    }

    private(set) var isWildcard = false
    private(set) var tags: [Tag] = []

    init(_ value: String) {
        if value.trimmingOWS == "*" {
            isWildcard = true
            return
        }
        var rest = value[...]
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "," }
            guard !rest.isEmpty else { return }
            let isWeak = rest.hasPrefix("W/")
            if isWeak { rest = rest.dropFirst(2) }
            // A malformed member ends the list: what came before still counts.
            guard rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") else { return }
            tags.append(Tag(isWeak: isWeak, opaque: rest[...close]))
            rest = rest[rest.index(after: close)...]
        }
    }

    /// `*` matches any current representation; strong comparison needs both tags strong.
    func matches(_ etag: String, weakComparison: Bool) -> Bool {
        if isWildcard { return true }
        let current = EntityTagList(etag).tags.first
        guard let current else { return false }
        return tags.contains { tag in
            tag.opaque == current.opaque && (weakComparison || (!tag.isWeak && !current.isWeak))
        }
    }
}
