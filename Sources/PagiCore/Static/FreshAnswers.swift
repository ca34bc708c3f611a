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
    private let entries = Mutex<Entries>(Entries())

    private struct Entries {
        var byKey: [String: Entry] = [:]
        /// When expired entries are next swept out: an entry nobody asks for again (holding a
        /// kept descriptor, perhaps of a deleted file) does not outlive the next sweep.
        var nextSweep: UInt64 = 0
    }

    init(lifetime: Duration = .seconds(1), maximumEntries: Int = 4096) {
        let (seconds, attoseconds) = lifetime.components
        lifetimeNanoseconds = UInt64(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        self.maximumEntries = maximumEntries
    }

    func lookup(_ key: String) -> Value? {
        let now = Self.now()
        return entries.withLock { entries in
            sweepIfDue(&entries, now: now)
            guard let entry = entries.byKey[key] else { return nil }
            guard entry.expires > now else {
                entries.byKey[key] = nil
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
            sweepIfDue(&entries, now: now)
            if entries.byKey.count >= maximumEntries {
                entries.byKey = entries.byKey.filter { $0.value.expires > now }
                // Still full of live entries: start over rather than pay for an LRU on every hit.
                if entries.byKey.count >= maximumEntries { entries.byKey.removeAll(keepingCapacity: true) }
            }
            entries.byKey[key] = entry
        }
    }

    private func sweepIfDue(_ entries: inout Entries, now: UInt64) {
        guard now >= entries.nextSweep else { return }
        entries.nextSweep = now + lifetimeNanoseconds
        guard !entries.byKey.isEmpty else { return }
        entries.byKey = entries.byKey.filter { $0.value.expires > now }
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

/// A file answered recently: its metadata (validators, prebuilt headers) and its bytes when small,
/// else the open file itself.
struct RememberedFile: Sendable {
    enum Content: Sendable {
        case bytes([UInt8])
        case file(KeptDescriptor, FileStatus)
    }
    let metadata: RepresentationMetadata
    let content: Content

    init(metadata: RepresentationMetadata, content: Content) {
        self.metadata = metadata.withPreparedFieldLines()
        self.content = content
    }
}

/// An open file kept by a remembered answer (closed when the answer is forgotten); every
/// response sends from a duplicate of its own, so the file is neither looked up nor opened again.
final class KeptDescriptor: Sendable {
    let raw: Int32

    /// Duplicates `descriptor`; nil when no descriptor is left.
    init?(duplicating descriptor: Descriptor) {
        raw = fcntl(descriptor.raw, F_DUPFD_CLOEXEC, 0)
        guard raw >= 0 else { return nil }
    }

    /// A descriptor of the same open file for one response (sendfile(2) reads at explicit offsets,
    /// so sharing the file position does not matter), or nil when the file changed since `status`
    /// was taken: written in place, its remembered length and validators would be wrong; replaced
    /// or deleted, it lost its name, which changes its status time too. One fstat(2) instead of a
    /// lookup (openat, fstat, close for each path level).
    func duplicate(ifStill status: FileStatus) -> Descriptor? {
        var info = RawFileInfo()
        guard fstat(raw, &info) == 0 else { return nil }
        let now = FileStatus(info)
        guard now.size == status.size, now.modifiedSeconds == status.modifiedSeconds,
              now.modifiedNanoseconds == status.modifiedNanoseconds, now.changedNanoseconds == status.changedNanoseconds
        else { return nil }
        let copy = fcntl(raw, F_DUPFD_CLOEXEC, 0)
        return copy >= 0 ? Descriptor(copy) : nil
    }

    deinit { _ = close(raw) }
}
