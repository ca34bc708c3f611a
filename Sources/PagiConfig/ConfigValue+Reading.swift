/// Reading handler options that the loader already validated: only the shapes it accepted occur,
/// so these accessors stay small and never have to report anything. Shared by every handler module.
extension ConfigValue {
    /// The value under `key` of a mapping.
    public subscript(_ key: String) -> ConfigValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    /// A scalar as the text a user wrote (`5` → "5"); nil for lists, maps and null.
    public var scalarText: String? {
        switch self {
        case .string(let text): return text
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .bool(let value): return String(value)
        case .null, .list, .map: return nil
        }
    }

    public var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .string(let text): return Int(text)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// `150ms`, `2s` or a bare number of seconds.
    public var secondsValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        case .string(let text): return ConfigUnits.parseDuration(text)
        default: return nil
        }
    }

    public var durationValue: Duration? {
        secondsValue.map { .nanoseconds(Int64(($0 * 1_000_000_000).rounded())) }
    }

    /// `1MiB`, `64KiB` or a bare number of bytes.
    public var sizeValue: Int? {
        switch self {
        case .int(let bytes): return bytes
        case .string(let text): return ConfigUnits.parseSize(text)
        default: return nil
        }
    }

    /// The strings of a list (other items skipped).
    public var stringItems: [String] {
        guard case .list(let items) = self else { return [] }
        return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
    }

    /// Key/value pairs of a mapping of scalars, in file order.
    public var stringPairs: [(name: String, value: String)] {
        guard case .map(let pairs) = self else { return [] }
        return pairs.compactMap { pair in pair.value.scalarText.map { (name: pair.key, value: $0) } }
    }
}
