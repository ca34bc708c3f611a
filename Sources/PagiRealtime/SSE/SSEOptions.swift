import PagiConfig

/// What the realtime module adds to an `sse` route's options (docs/configuration.md §9.6).
extension SSEConfig {
    /// A client with this much still unsent is not keeping up and is dropped (it reconnects and
    /// resumes with `Last-Event-ID`), so one slow reader never makes the server buffer without bound.
    static let maxPendingBytes = 1 << 20

    var retryMilliseconds: Int {
        let (seconds, attoseconds) = retry.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
