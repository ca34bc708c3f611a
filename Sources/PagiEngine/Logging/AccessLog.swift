#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PagiConfig
import PagiCore
import Synchronization

/// One finished exchange, as the access log records it.
struct AccessRecord {
    var clientAddress: String
    var method: String
    var target: String
    /// `HTTP/1.1`, `HTTP/1.0` or `HTTP/2.0`.
    var proto: String
    var status: Int
    var bodyBytes: Int
    var host: String
    var referer: String?
    var userAgent: String?
    var durationSeconds: Double
    /// Set by the `request_id` middleware.
    var requestID: String?
    /// The user `basic_auth` let in.
    var user: String?
    /// `http`, or what a trusted proxy says the client used.
    var scheme: String
    /// The verified client certificate's subject (docs/tls.md); json format only.
    var clientSubject: String?
}

/// Writes access-log lines (`common`, `combined`, `json`) to stdout, stderr or a file.
/// Each line leaves in one write(2) (O_APPEND for files) so that threads never interleave them.
final class AccessLog: Sendable {
    private let format: AccessLogConfig.Format
    private let descriptor: Int32
    private let clock = LogClock()

    /// Returns nil when the log is `off`. Throws a message when the file cannot be opened.
    init?(_ config: AccessLogConfig) throws(EngineError) {
        format = config.format
        switch config.to {
        case .off: return nil
        case .stdout: descriptor = STDOUT_FILENO
        case .stderr: descriptor = STDERR_FILENO
        case .file(let path):
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw EngineError("cannot open access log '\(path)': \(String(cString: strerror(errno)))")
            }
            descriptor = fd
        }
    }

    /// A reload opens the file anew (after a rotation, the new file); the old descriptor closes
    /// with the last connection that still logs through it.
    deinit {
        if descriptor != STDOUT_FILENO && descriptor != STDERR_FILENO { close(descriptor) }
    }

    func record(_ r: AccessRecord) {
        writeLine(render(r), to: descriptor)
    }

    private func render(_ r: AccessRecord) -> String {
        let requestLine = "\(r.method) \(r.target) \(r.proto)"
        switch format {
        case .common, .combined:
            var line = "\(r.clientAddress) - \(r.user.map(Self.escapeUser) ?? "-") [\(clock.commonLogTime())] \"\(Self.escape(requestLine))\" \(r.status) \(r.bodyBytes)"
            if format == .combined {
                line += " \"\(Self.escape(r.referer ?? "-"))\" \"\(Self.escape(r.userAgent ?? "-"))\""
            }
            // With `request_id`, the id follows as one more quoted field (as nginx users add `$request_id`).
            if let id = r.requestID { line += " \"\(Self.escape(id))\"" }
            return line + "\n"
        case .json:
            let fields: [(String, String)] = [
                ("time", TextEscaping.jsonString(clock.iso8601())),
                ("client", TextEscaping.jsonString(r.clientAddress)),
                ("host", TextEscaping.jsonString(r.host)),
                ("method", TextEscaping.jsonString(r.method)),
                ("uri", TextEscaping.jsonString(r.target)),
                ("proto", TextEscaping.jsonString(r.proto)),
                ("status", String(r.status)),
                ("bytes", String(r.bodyBytes)),
                ("referer", r.referer.map(TextEscaping.jsonString) ?? "null"),
                ("user_agent", r.userAgent.map(TextEscaping.jsonString) ?? "null"),
                ("duration_ms", String(Double(Int(r.durationSeconds * 1_000_000)) / 1000)),
                ("request_id", r.requestID.map(TextEscaping.jsonString) ?? "null"),
                ("user", r.user.map(TextEscaping.jsonString) ?? "null"),
                ("scheme", TextEscaping.jsonString(r.scheme)),
                ("client_subject", r.clientSubject.map(TextEscaping.jsonString) ?? "null"),
            ]
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
        }
    }

    /// The user field of common/combined is unquoted: its spaces would shift every later field.
    static func escapeUser(_ user: String) -> String {
        escape(user).replacingOccurrences(of: " ", with: "\\x20")
    }

    /// Escapes quotes, backslashes and control characters so a request can never forge a log line.
    static func escape(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\x" + String(scalar.value, radix: 16, uppercase: false).leftPadded(to: 2)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// Wall-clock strings, formatted at most once per second (the hot path reads the cached copy).
final class LogClock: Sendable {
    private struct Cached {
        var second = -1
        var httpDate = ""
        var common = ""
        var iso = ""
    }
    private let cache = Mutex(Cached())

    /// One form of the current second; only that string is copied out (`Date` is read per response).
    private func current(_ form: (Cached) -> String) -> String {
        let now = time(nil)
        return cache.withLock { cached in
            if cached.second != now {
                cached = Cached(second: now, httpDate: HTTPDate.format(epochSeconds: now),
                                common: Self.format(now, "%d/%b/%Y:%H:%M:%S +0000"),
                                iso: Self.format(now, "%Y-%m-%dT%H:%M:%SZ"))
            }
            return form(cached)
        }
    }

    /// IMF-fixdate for the `Date` header.
    func httpDate() -> String { current { $0.httpDate } }
    func commonLogTime() -> String { current { $0.common } }
    func iso8601() -> String { current { $0.iso } }

    private static func format(_ seconds: Int, _ pattern: String) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [Int8](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Writes a whole line with one write(2) where possible, retrying on EINTR and short writes.
func writeLine(_ line: String, to descriptor: Int32) {
    var bytes = Array(line.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}
