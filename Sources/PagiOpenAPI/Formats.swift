import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// String formats checked by value (JSON Schema §7.3, OpenAPI's `byte`); any other format is
/// accepted, as JSON Schema allows. Dates and times are checked field by field (RFC 3339 §5.6:
/// month 01–12, the month's days with leap years, hours 00–23, a leap second 60), not by shape only.
enum Formats {
    static let checks: [String: @Sendable (String) -> Bool] = [
        "date": { fullDate(Array($0.utf8)[...]) },
        "date-time": dateTime,
        "time": { fullTime(Array($0.utf8)[...]) },
        "email": email,
        "uuid": { UUID(uuidString: $0) != nil && $0.utf8.count == 36 },
        "uri": { uri($0, absolute: true) },
        "url": { uri($0, absolute: true) },
        "uri-reference": { uri($0, absolute: false) },
        "hostname": hostname,
        "ipv4": { address($0, family: AF_INET) && !$0.contains(where: { !($0.isASCII && ($0.isNumber || $0 == ".")) }) },
        "ipv6": { address($0, family: AF_INET6) },
        "byte": { $0.utf8.count % 4 == 0 && Data(base64Encoded: $0) != nil },
    ]

    private typealias Bytes = ArraySlice<UInt8>

    /// `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`; `t`, `z` and a space for `T` are accepted too.
    private static func dateTime(_ string: String) -> Bool {
        let bytes = Array(string.utf8)
        guard bytes.count > 11, [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[10]) else { return false }
        return fullDate(bytes[..<10]) && fullTime(bytes[11...])
    }

    private static func fullDate(_ bytes: Bytes) -> Bool {
        guard bytes.count == 10, bytes[bytes.startIndex + 4] == UInt8(ascii: "-"), bytes[bytes.startIndex + 7] == UInt8(ascii: "-"),
              let year = number(bytes, at: 0, digits: 4), let month = number(bytes, at: 5, digits: 2),
              let day = number(bytes, at: 8, digits: 2), (1...12).contains(month) else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...days).contains(day)
    }

    /// `hh:mm:ss[.frac](Z|±hh:mm)`.
    private static func fullTime(_ bytes: Bytes) -> Bool {
        guard bytes.count >= 9, bytes[bytes.startIndex + 2] == UInt8(ascii: ":"), bytes[bytes.startIndex + 5] == UInt8(ascii: ":"),
              let hour = number(bytes, at: 0, digits: 2), let minute = number(bytes, at: 3, digits: 2),
              let second = number(bytes, at: 6, digits: 2), hour < 24, minute < 60, second <= 60 else { return false }
        var rest = bytes.dropFirst(8)
        if rest.first == UInt8(ascii: ".") {
            let digits = rest.dropFirst().prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            guard !digits.isEmpty else { return false }
            rest = rest.dropFirst(1 + digits.count)
        }
        if rest.count == 1 { return rest.first == UInt8(ascii: "Z") || rest.first == UInt8(ascii: "z") }
        guard rest.count == 6, rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-"),
              rest[rest.startIndex + 3] == UInt8(ascii: ":"),
              let offsetHours = number(rest, at: 1, digits: 2), let offsetMinutes = number(rest, at: 4, digits: 2) else { return false }
        return offsetHours < 24 && offsetMinutes < 60
    }

    private static func number(_ bytes: Bytes, at offset: Int, digits: Int) -> Int? {
        var value = 0
        for byte in bytes.dropFirst(offset).prefix(digits) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return bytes.count >= offset + digits ? value : nil
    }

    /// One `@`, a non-empty local part, and a domain with a dot (or an address literal), no spaces.
    private static func email(_ string: String) -> Bool {
        let parts = string.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !string.contains(where: \.isWhitespace) else { return false }
        let domain = parts[1]
        if domain.hasPrefix("[") && domain.hasSuffix("]") { return true }
        return domain.contains(".") && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !domain.contains("..")
    }

    /// RFC 3986: no spaces or other characters a URI cannot hold; with `absolute`, a scheme.
    private static func uri(_ string: String, absolute: Bool) -> Bool {
        guard !string.contains(where: { !$0.isASCII || $0.isWhitespace || "<>\"{}|\\^`".contains($0) }) else { return false }
        guard absolute else { return true }
        guard let colon = string.firstIndex(of: ":"), let first = string.first, first.isLetter else { return false }
        return string[..<colon].allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
    }

    /// RFC 1123 host names: labels of letters, digits and hyphens, 63 bytes at most, 253 in all.
    private static func hostname(_ string: String) -> Bool {
        let name = string.hasSuffix(".") ? String(string.dropLast()) : string
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    /// The C library's own parser (`inet_pton`), which reads exactly the textual forms of RFC 4291 and dotted quads.
    private static func address(_ string: String, family: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(family, string, &buffer) == 1
    }
}
