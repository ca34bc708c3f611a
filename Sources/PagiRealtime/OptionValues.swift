import PagiConfig

/// Reading handler options the loader already validated (shapes and units are known to be right).
extension ConfigValue {
    subscript(key: String) -> ConfigValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    var text: String? {
        switch self {
        case .string(let text): return text
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        default: return nil
        }
    }

    var integer: Int? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// A duration option (`15s`, `250ms`, or a bare number of seconds).
    var duration: Duration? {
        let seconds: Double? = switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .string(let text): ConfigUnits.parseDuration(text)
        default: nil
        }
        return seconds.map { .milliseconds(Int64(($0 * 1000).rounded())) }
    }
}
