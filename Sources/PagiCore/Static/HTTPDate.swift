#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// HTTP dates (RFC 9110 §5.6.7), written by hand on proleptic-Gregorian day arithmetic so the
/// hot path (`Date` on every response) neither allocates a formatter nor depends on the locale.
public enum HTTPDate {
    private static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let longDayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(epochSeconds: Int) -> String {
        let time = CivilTime(epochSeconds: epochSeconds)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out += dayNames[time.weekday].utf8
        out += ", ".utf8
        appendDigits(time.day, width: 2, to: &out)
        out.append(UInt8(ascii: " "))
        out += monthNames[time.month - 1].utf8
        out.append(UInt8(ascii: " "))
        appendDigits(time.year, width: 4, to: &out)
        out.append(UInt8(ascii: " "))
        appendClock(time, to: &out)
        out += " GMT".utf8
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3339 in UTC, e.g. `1994-11-06T08:49:37Z` (for machine-readable listings).
    static func formatISO8601(epochSeconds: Int) -> String {
        let time = CivilTime(epochSeconds: epochSeconds)
        var out: [UInt8] = []
        appendDigits(time.year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(time.month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(time.day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        appendClock(time, to: &out)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Seconds since the epoch for an IMF-fixdate, an obsolete RFC 850 date or an asctime date; nil otherwise.
    public static func parse(_ string: String) -> Int? {
        parse(string, currentYear: CivilTime(epochSeconds: time(nil)).year)
    }

    /// `currentYear` resolves the two-digit years of RFC 850 dates.
    static func parse(_ string: String, currentYear: Int) -> Int? {
        var scanner = Scanner(Array(string.utf8))
        if let imf = parseIMFFixdate(&scanner) { return imf }
        scanner.position = 0
        if let rfc850 = parseRFC850(&scanner, currentYear: currentYear) { return rfc850 }
        scanner.position = 0
        return parseAsctime(&scanner)
    }

    // Sun, 06 Nov 1994 08:49:37 GMT
    private static func parseIMFFixdate(_ s: inout Scanner) -> Int? {
        guard s.word(in: dayNames) != nil, s.literal(", "), let day = s.number(digits: 2), s.literal(" "),
              let month = s.word(in: monthNames), s.literal(" "), let year = s.number(digits: 4), s.literal(" "),
              let clock = s.clock(), s.literal(" GMT"), s.atEnd else { return nil }
        return epochSeconds(year: year, month: month + 1, day: day, clock: clock)
    }

    // Sunday, 06-Nov-94 08:49:37 GMT
    private static func parseRFC850(_ s: inout Scanner, currentYear: Int) -> Int? {
        guard s.word(in: longDayNames) != nil, s.literal(", "), let day = s.number(digits: 2), s.literal("-"),
              let month = s.word(in: monthNames), s.literal("-"), let shortYear = s.number(digits: 2), s.literal(" "),
              let clock = s.clock(), s.literal(" GMT"), s.atEnd else { return nil }
        // RFC 9110: a year more than 50 years in the future means the most recent past year with those digits.
        var year = currentYear - currentYear % 100 + shortYear
        if year > currentYear + 50 { year -= 100 }
        return epochSeconds(year: year, month: month + 1, day: day, clock: clock)
    }

    // Sun Nov  6 08:49:37 1994
    private static func parseAsctime(_ s: inout Scanner) -> Int? {
        guard s.word(in: dayNames) != nil, s.literal(" "), let month = s.word(in: monthNames), s.literal(" ") else {
            return nil
        }
        let day: Int
        if s.literal(" ") {
            guard let digit = s.number(digits: 1) else { return nil }
            day = digit
        } else {
            guard let digits = s.number(digits: 2) else { return nil }
            day = digits
        }
        guard s.literal(" "), let clock = s.clock(), s.literal(" "), let year = s.number(digits: 4), s.atEnd else {
            return nil
        }
        return epochSeconds(year: year, month: month + 1, day: day, clock: clock)
    }

    private static func epochSeconds(year: Int, month: Int, day: Int, clock: (hour: Int, minute: Int, second: Int)) -> Int? {
        guard day >= 1, day <= CivilTime.daysInMonth(year: year, month: month),
              clock.hour < 24, clock.minute < 60, clock.second <= 60 else { return nil }
        // A leap second (:60) is folded into the next second, as POSIX time does.
        return CivilTime.daysFromCivil(year: year, month: month, day: day) * 86_400
            + clock.hour * 3600 + clock.minute * 60 + clock.second
    }

    private static func appendClock(_ time: CivilTime, to out: inout [UInt8]) {
        appendDigits(time.hour, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(time.minute, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(time.second, width: 2, to: &out)
    }

    private static func appendDigits(_ value: Int, width: Int, to out: inout [UInt8]) {
        let digits = Array(String(value).utf8)
        if digits.count < width { out += repeatElement(UInt8(ascii: "0"), count: width - digits.count) }
        out += digits
    }

    /// A byte cursor over the date text; every method consumes only on success.
    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position == bytes.count }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            let matches = text.withUTF8Buffer { expected in
                expected.indices.allSatisfy { bytes[position + $0] == expected[$0] }
            }
            if matches { position += count }
            return matches
        }

        /// Index of the word of `words` at the cursor.
        mutating func word(in words: [String]) -> Int? {
            for (index, word) in words.enumerated() {
                let utf8 = Array(word.utf8)
                if position + utf8.count <= bytes.count, Array(bytes[position..<(position + utf8.count)]) == utf8 {
                    position += utf8.count
                    return index
                }
            }
            return nil
        }

        mutating func number(digits: Int) -> Int? {
            guard position + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[position..<(position + digits)] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            position += digits
            return value
        }

        mutating func clock() -> (hour: Int, minute: Int, second: Int)? {
            let start = position
            guard let hour = number(digits: 2), literal(":"), let minute = number(digits: 2), literal(":"),
                  let second = number(digits: 2) else {
                position = start
                return nil
            }
            return (hour, minute, second)
        }
    }
}

/// A UTC calendar time (Howard Hinnant's `civil_from_days` / `days_from_civil`).
struct CivilTime {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    /// 0 = Sunday.
    var weekday: Int

    init(epochSeconds: Int) {
        let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secondOfDay = epochSeconds - days * 86_400
        hour = secondOfDay / 3600
        minute = secondOfDay % 3600 / 60
        second = secondOfDay % 60
        // 1970-01-01 was a Thursday.
        weekday = ((days % 7) + 11) % 7
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2:
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return leap ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
