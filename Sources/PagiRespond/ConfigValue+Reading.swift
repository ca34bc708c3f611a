import PagiConfig

/// Reading handler options that the loader already validated: only the shapes it accepted occur,
/// so these accessors stay small and never have to report anything.
extension ConfigValue {
    subscript(_ key: String) -> ConfigValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    /// A scalar as the text a user wrote (`5` → "5"); nil for lists, maps and null.
    var scalarText: String? {
        switch self {
        case .string(let text): return text
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .bool(let value): return String(value)
        case .null, .list, .map: return nil
        }
    }

    var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .string(let text): return Int(text)
        default: return nil
        }
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// `150ms`, `2s` or a bare number of seconds.
    var durationValue: Duration? {
        let seconds: Double? = switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .string(let text): ConfigUnits.parseDuration(text)
        default: nil
        }
        return seconds.map { .nanoseconds(Int64(($0 * 1_000_000_000).rounded())) }
    }

    /// Key/value pairs of a mapping of scalars, in file order.
    var stringPairs: [(name: String, value: String)] {
        guard case .map(let pairs) = self else { return [] }
        return pairs.compactMap { pair in pair.value.scalarText.map { (name: pair.key, value: $0) } }
    }
}
