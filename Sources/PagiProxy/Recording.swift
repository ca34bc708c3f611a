import Synchronization

/// One exchange a `proxy` route passed on, as `pagi-serve record` keeps it (docs/proxy.md,
/// *Record mode*): the request's method, path, query and body, and the answer as the client got it.
public struct RecordedExchange: Sendable {
    public var method: String
    public var path: String
    public var query: String?
    public var status: Int
    /// The answer's fields, hop-by-hop ones removed.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The request's body when it was read whole (none for a streamed one): record mode tells
    /// apart JSON requests that got different answers by it.
    public var requestBody: [UInt8] = []
}

/// Told about every exchange a proxy route completed (`pagi-serve record`).
public protocol ProxyRecorder: Sendable {
    func record(_ exchange: RecordedExchange)
}

extension ProxyHandler {
    /// The recorder of the proxy routes compiled from now on; nil when nothing records.
    public static func record(to recorder: (any ProxyRecorder)?) {
        recording.withLock { $0 = recorder }
    }

    static let recording = Mutex<(any ProxyRecorder)?>(nil)
    /// Answers longer than this are passed on but not recorded.
    static let largestRecorded = 64 << 20
}
