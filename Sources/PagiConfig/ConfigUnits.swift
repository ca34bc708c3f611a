import Foundation

/// Parsers for the unit-suffixed scalars of the config file (docs/configuration.md §2), shared with the CLI.
public enum ConfigUnits {
    private static let durationUnits: [(suffix: String, seconds: Double)] = [
        ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600),
    ]
    // Longest suffixes first so that "KiB" is not mistaken for "B".
    private static let sizeUnits: [(suffix: String, bytes: Double)] = [
        ("kib", 1024), ("mib", 1024 * 1024), ("gib", 1024 * 1024 * 1024),
        ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("b", 1),
    ]

    /// `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds; nil when malformed or negative.
    public static func parseDuration(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for unit in durationUnits where trimmed.hasSuffix(unit.suffix) {
            return unsignedNumber(trimmed.dropLast(unit.suffix.count)).map { $0 * unit.seconds }
        }
        return unsignedNumber(Substring(trimmed))
    }

    /// `512`, `16KiB`, `10MiB`, `1GiB` (binary), `16KB`, `10MB` (decimal), in bytes; nil when malformed.
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let lowered = trimmed.lowercased()
        var number = Substring(trimmed)
        var factor: Double = 1
        if let unit = sizeUnits.first(where: { lowered.hasSuffix($0.suffix) }) {
            number = trimmed.dropLast(unit.suffix.count).drop(while: { $0 == " " })
            factor = unit.bytes
        }
        guard let value = unsignedNumber(number.trimmingCharacters(in: .whitespaces)[...]) else { return nil }
        let bytes = (value * factor).rounded()
        guard bytes < Double(Int.max) else { return nil }
        return Int(bytes)
    }

    /// Digits with at most one decimal point: no sign, exponent, `inf` or `nan`.
    private static func unsignedNumber(_ text: Substring) -> Double? {
        guard text.contains(where: \.isASCIIDigit),
              text.allSatisfy({ $0.isASCIIDigit || $0 == "." }),
              text.filter({ $0 == "." }).count <= 1
        else { return nil }
        return Double(text)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
