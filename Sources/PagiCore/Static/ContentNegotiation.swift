import PagiConfig

/// Proactive negotiation on `Accept-Encoding` and `Accept` (RFC 9110 §12.5).
public enum ContentNegotiation {
    /// One list member with its weight in thousandths (`q=0.5` → 500).
    struct Preference: Equatable {
        var token: String
        var weight: Int
    }

    /// Members of a weighted list, lower-cased; members with a malformed `q` are dropped.
    static func preferences(_ value: String) -> [Preference] {
        value.split(separator: ",").compactMap { member in
            let parts = member.split(separator: ";")
            guard let first = parts.first else { return nil }
            let token = first.trimmingOWS.lowercased()
            guard !token.isEmpty else { return nil }
            var weight = 1000
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                guard pair.count == 2, pair[0].trimmingOWS.lowercased() == "q" else { continue }
                guard let parsed = qualityValue(pair[1].trimmingOWS) else { return nil }
                weight = parsed
            }
            return Preference(token: token, weight: weight)
        }
    }

    /// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
    static func qualityValue(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard let leading = bytes.first, leading == UInt8(ascii: "0") || leading == UInt8(ascii: "1") else { return nil }
        var weight = leading == UInt8(ascii: "1") ? 1000 : 0
        guard bytes.count > 1 else { return weight }
        guard bytes[1] == UInt8(ascii: "."), bytes.count <= 5 else { return nil }
        var scale = 100
        for byte in bytes[2...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            weight += Int(byte - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        return weight <= 1000 ? weight : nil
    }

    /// The precompressed encoding to send, among `available` (in the configured order of preference),
    /// or nil for identity. Without `Accept-Encoding` the client gets identity.
    static func encoding(acceptEncoding: String?, available: [StaticConfig.Encoding]) -> StaticConfig.Encoding? {
        contentCoding(acceptEncoding: acceptEncoding, available: available.map(\.rawValue)).flatMap(StaticConfig.Encoding.init)
    }

    /// The content coding to send among `available` (lower-case names, in order of preference),
    /// or nil for identity; also used by the `compress` middleware.
    public static func contentCoding(acceptEncoding: String?, available: [String]) -> String? {
        guard let acceptEncoding, !available.isEmpty else { return nil }
        let preferences = preferences(acceptEncoding)
        let wildcard = preferences.first { $0.token == "*" }?.weight
        func weight(of token: String, aliases: [String] = []) -> Int? {
            preferences.first { $0.token == token || aliases.contains($0.token) }?.weight
        }
        var best: (coding: String, weight: Int)?
        for coding in available {
            let aliases = coding == "gzip" ? ["x-gzip"] : []
            let w = weight(of: coding, aliases: aliases) ?? wildcard ?? 0
            // Strictly greater: ties keep the earlier (preferred) coding of the config.
            if w > 0, w > (best?.weight ?? 0) { best = (coding, w) }
        }
        guard let best else { return nil }
        // Identity competes only when the client named it; it is never the reason to compress.
        if let identity = weight(of: "identity"), identity > best.weight { return nil }
        return best.coding
    }

    /// Whether the client prefers JSON to HTML (for directory listings).
    static func prefersJSON(accept: String?) -> Bool {
        guard let accept else { return false }
        let preferences = preferences(accept)
        guard let json = preferences.first(where: { $0.token == "application/json" })?.weight, json > 0 else {
            return false
        }
        let html = preferences.first { $0.token == "text/html" }?.weight ?? 0
        return json >= html
    }
}
