import PagiConfig

/// The options every `sse` route has (contract §5.6).
struct SSEOptions: Sendable {
    /// Comment lines this often; nil for none (`keepalive: 0`).
    var keepalive: Duration? = .seconds(15)
    /// Sent once at the start as `retry:`.
    var retry: Duration = .seconds(3)
    /// Events kept per channel for clients that resume with `Last-Event-ID`.
    var replay = 100

    /// A client with this much still unsent is not keeping up and is dropped (it reconnects and
    /// resumes with `Last-Event-ID`), so one slow reader never makes the server buffer without bound.
    static let maxPendingBytes = 1 << 20

    init(_ options: ConfigValue) {
        if let keepalive = options["keepalive"]?.durationValue { self.keepalive = keepalive == .zero ? nil : keepalive }
        if let retry = options["retry"]?.durationValue { self.retry = retry }
        if let replay = options["replay"]?.intValue { self.replay = replay }
    }

    var retryMilliseconds: Int {
        let (seconds, attoseconds) = retry.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
