/// What a client asks for in `Prefer` (RFC 7240): `Prefer: code=404, example=notFound`.
/// Preferences are comma-separated `name=value` tokens (value optionally quoted); parameters
/// after `;` are read the same way, so `code=404; example=notFound` works too.
struct Preferences: Equatable {
    var code: Int?
    var example: String?

    init(headerValues: [String]) {
        for value in headerValues {
            for item in value.split(separator: ",") {
                for pair in item.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingOWS }
                    guard parts.count == 2 else { continue }
                    let word = parts[1].count >= 2 && parts[1].hasPrefix("\"") && parts[1].hasSuffix("\"")
                        ? String(parts[1].dropFirst().dropLast()) : parts[1]
                    switch parts[0].lowercased() {
                    case "code": code = code ?? Int(word)
                    case "example": example = example ?? word
                    default: break
                    }
                }
            }
        }
    }

    /// For `Preference-Applied` (RFC 7240 §3): the preferences that were honoured.
    static func applied(code: Int?, example: String?) -> String? {
        let parts = [code.map { "code=\($0)" }, example.map { "example=\"\($0)\"" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}
