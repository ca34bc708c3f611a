#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// What one static route recently answered, by request path and `Accept-Encoding`: a hot small
/// file (or a path that does not exist) is then answered without a single system call. An entry
/// lives at most `lifetime` (one second by default), so a changed file is never served stale for
/// longer than that (nginx's `open_file_cache_valid` idea, which also covers lookup errors).
final class FreshAnswers<Value: Sendable>: Sendable {
    struct Entry: Sendable {
        let value: Value
        let expires: UInt64
    }

    let lifetimeNanoseconds: UInt64
    /// Bounds memory: a file's bytes are shared with `SmallFileCache`, so an entry costs little
    /// more than its key and headers.
    let maximumEntries: Int
    private let entries = Mutex<[String: Entry]>([:])

    init(lifetime: Duration = .seconds(1), maximumEntries: Int = 4096) {
        let (seconds, attoseconds) = lifetime.components
        lifetimeNanoseconds = UInt64(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        self.maximumEntries = maximumEntries
    }

    func lookup(_ key: String) -> Value? {
        let now = Self.now()
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    func store(_ key: String, _ value: Value) {
        guard lifetimeNanoseconds > 0 else { return }
        let now = Self.now()
        let entry = Entry(value: value, expires: now + lifetimeNanoseconds)
        entries.withLock { entries in
            if entries.count >= maximumEntries {
                entries = entries.filter { $0.value.expires > now }
                // Still full of live entries: start over rather than pay for an LRU on every hit.
                if entries.count >= maximumEntries { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = entry
        }
    }

    /// A coarse monotonic clock: a few milliseconds of resolution is plenty for a one-second bound.
    private static func now() -> UInt64 {
        var time = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
        #else
        clock_gettime(CLOCK_MONOTONIC, &time)
        #endif
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// The key of a request: its path, and the encodings it accepts (they choose the representation).
/// Runs for every static request: without `Accept-Encoding` (the common case for non-browsers)
/// the key is the path itself, with no array or string built.
func freshAnswerKey(_ request: Request) -> String {
    var key = request.path
    for field in request.headers where field.name.asciiCaseInsensitiveEquals("accept-encoding") {
        key += "\n" + field.value
    }
    return key
}

/// A small file answered from memory: its metadata (validators, prebuilt headers) and bytes.
struct RememberedFile: Sendable {
    let metadata: RepresentationMetadata
    let bytes: [UInt8]
}
