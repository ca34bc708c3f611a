#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import PagiConfig
import Synchronization

/// The server's own log (not the access log): `LEVEL: message key=value…` on stderr, filtered by
/// `log_level`.
struct ServerLogHandler: LogHandler {
    /// Set on one logger only; otherwise the server's `log_level`, which a reload changes.
    private var ownLevel: Logger.Level?
    var metadata: Logger.Metadata = [:]

    var logLevel: Logger.Level {
        get { ownLevel ?? ServerLog.level }
        set { ownLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        var line = "\(Self.name(event.level)): \(event.message)"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        writeLine(line + "\n", to: STDERR_FILENO)
    }

    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "debug"
        case .info, .notice: return "info"
        case .warning: return "warn"
        case .error, .critical: return "error"
        }
    }

    static func level(_ level: LogLevel) -> Logger.Level {
        switch level {
        case .debug: return .debug
        case .info: return .info
        case .warn: return .warning
        case .error: return .error
        }
    }
}

/// A failure of the engine to start (bind, open a log file…), with a message for the operator.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Entry point for the executable to install the server's log format.
public enum ServerLog {
    /// `log_level` of every server log handler, as an index into `Logger.Level.allCases`.
    private static let threshold = Atomic<Int>(Logger.Level.allCases.firstIndex(of: .info) ?? 0)

    static var level: Logger.Level {
        Logger.Level.allCases[threshold.load(ordering: .relaxed)]
    }

    /// Sets the level of every server log handler, those already made included (a reload).
    public static func setLevel(_ level: LogLevel) {
        let wanted = ServerLogHandler.level(level)
        threshold.store(Logger.Level.allCases.firstIndex(of: wanted) ?? 0, ordering: .relaxed)
    }

    public static func makeHandler(label: String, level: LogLevel) -> any LogHandler {
        setLevel(level)
        return ServerLogHandler()
    }
}
