/// The `Range` header (RFC 9110 §14.1–14.2) for a representation of known length.
public enum ByteRanges {
    /// More ranges than this are answered with the whole representation (cheap DoS otherwise).
    public static let maximumRangeCount = 16

    public enum Outcome: Sendable, Equatable {
        /// Serve the whole representation: no, malformed, non-`bytes`, overlapping or too many ranges.
        case none
        /// Byte ranges (inclusive, clipped to the length) in the order the client asked for them.
        case satisfiable([ClosedRange<Int>])
        /// `416` with `Content-Range: bytes */length`.
        case unsatisfiable
    }

    public static func evaluate(_ header: String, length: Int) -> Outcome {
        guard let specs = parse(header) else { return .none }
        guard specs.count <= maximumRangeCount else { return .none }
        let ranges = specs.compactMap { $0.resolved(length: length) }
        guard !ranges.isEmpty else { return .unsatisfiable }
        // Overlapping ranges would send the same bytes twice; adjacent ones are harmless.
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.lowerBound <= previous.upperBound {
            return .none
        }
        return .satisfiable(ranges)
    }

    /// One `int-range` or `suffix-range`, before the representation length is known.
    enum Spec: Equatable {
        case from(Int, through: Int?)
        case suffix(Int)

        func resolved(length: Int) -> ClosedRange<Int>? {
            switch self {
            case .from(let first, let last):
                guard first < length else { return nil }
                return first...min(last ?? Int.max, length - 1)
            case .suffix(let count):
                guard count > 0, length > 0 else { return nil }
                return max(0, length - count)...(length - 1)
            }
        }
    }

    /// nil when the header is not a syntactically valid `bytes` range set (it is then ignored).
    /// Parsed on bytes with integer offsets: it runs for every range request.
    static func parse(_ header: String) -> [Spec]? {
        let bytes = Array(header.utf8)
        let whole = trimmed(bytes, 0..<bytes.count)
        guard let equals = bytes[whole].firstIndex(of: UInt8(ascii: "=")),
              bytes[trimmed(bytes, whole.lowerBound..<equals)].elementsEqual("bytes".utf8, by: { $0 | 0x20 == $1 })
        else { return nil }
        var specs: [Spec] = []
        var elementStart = equals + 1
        // Empty list elements (`bytes=0-1,,5-6`) are allowed by the list syntax (RFC 9110 §5.6.1).
        while elementStart <= whole.upperBound {
            let comma = bytes[elementStart..<whole.upperBound].firstIndex(of: UInt8(ascii: ",")) ?? whole.upperBound
            let spec = trimmed(bytes, elementStart..<comma)
            elementStart = comma + 1
            if spec.isEmpty { continue }
            guard let dash = bytes[spec].firstIndex(of: UInt8(ascii: "-")) else { return nil }
            let firstText = bytes[spec.lowerBound..<dash], lastText = bytes[(dash + 1)..<spec.upperBound]
            if firstText.isEmpty {
                guard let count = saturatingNumber(lastText) else { return nil }
                specs.append(.suffix(count))
            } else {
                guard let first = saturatingNumber(firstText) else { return nil }
                if lastText.isEmpty {
                    specs.append(.from(first, through: nil))
                } else {
                    guard let last = saturatingNumber(lastText), last >= first else { return nil }
                    specs.append(.from(first, through: last))
                }
            }
        }
        return specs.isEmpty ? nil : specs
    }

    /// `range` without leading and trailing SP / HTAB.
    private static func trimmed(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, bytes[lower] == UInt8(ascii: " ") || bytes[lower] == UInt8(ascii: "\t") { lower += 1 }
        while upper > lower, bytes[upper - 1] == UInt8(ascii: " ") || bytes[upper - 1] == UInt8(ascii: "\t") { upper -= 1 }
        return lower..<upper
    }

    /// Decimal digits only; values beyond `Int.max` saturate (they are past any file's end anyway).
    private static func saturatingNumber(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            value = overflow1 || overflow2 ? Int.max : sum
        }
        return value
    }
}

extension StringProtocol where SubSequence == Substring {
    /// Without leading and trailing optional whitespace (SP / HTAB).
    var trimmingOWS: Substring { self[...].withoutOWS }
}

extension Substring {
    /// Trimmed on bytes (OWS is ASCII): no grapheme breaking for a header value.
    var withoutOWS: Substring {
        let bytes = utf8
        var start = bytes.startIndex, end = bytes.endIndex
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { bytes.formIndex(after: &start) }
        while start < end {
            let last = bytes.index(before: end)
            guard bytes[last] == UInt8(ascii: " ") || bytes[last] == UInt8(ascii: "\t") else { break }
            end = last
        }
        return self[start..<end]
    }
}
