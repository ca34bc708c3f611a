#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Contents of small files kept in memory, so they leave in the same write as the head.
/// Keyed by the file's identity and version: a changed file gets a new key, and its stale
/// entry ages out first-in-first-out within the byte budget.
final class SmallFileCache: Sendable {
    /// One cache for all static routes: keys name file versions, so sharing is safe, and the
    /// memory bound holds for the whole process.
    static let shared = SmallFileCache()

    struct Key: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
        var changedNanoseconds: Int

        init(_ status: FileStatus) {
            device = status.device
            inode = status.inode
            size = status.size
            modifiedSeconds = status.modifiedSeconds
            modifiedNanoseconds = status.modifiedNanoseconds
            changedNanoseconds = status.changedNanoseconds
        }
    }

    private struct Storage {
        var contents: [Key: [UInt8]] = [:]
        var insertionOrder: [Key] = []
        var totalBytes = 0
    }

    let maximumFileSize: Int
    let maximumTotalBytes: Int
    private let storage = Mutex(Storage())

    init(maximumFileSize: Int = 64 * 1024, maximumTotalBytes: Int = 32 * 1024 * 1024) {
        self.maximumFileSize = maximumFileSize
        self.maximumTotalBytes = maximumTotalBytes
    }

    /// The contents of the open file described by `status`, from memory or read now; nil for
    /// files too big to cache or when the file changed while being read.
    func contents(of descriptor: Descriptor, status: FileStatus) -> [UInt8]? {
        guard status.size <= maximumFileSize else { return nil }
        let key = Key(status)
        if let cached = storage.withLock({ $0.contents[key] }) { return cached }
        guard let bytes = Self.read(descriptor, count: status.size) else { return nil }
        storage.withLock { storage in
            guard storage.contents[key] == nil else { return }
            while storage.totalBytes + bytes.count > maximumTotalBytes, !storage.insertionOrder.isEmpty {
                let oldest = storage.insertionOrder.removeFirst()
                storage.totalBytes -= storage.contents.removeValue(forKey: oldest)?.count ?? 0
            }
            storage.contents[key] = bytes
            storage.insertionOrder.append(key)
            storage.totalBytes += bytes.count
        }
        return bytes
    }

    /// Exactly `count` bytes from `offset`, or nil (short read: the file was truncated meanwhile).
    static func read(_ descriptor: Descriptor, offset: Int = 0, count: Int) -> [UInt8]? {
        var complete = false
        // Uninitialised: every byte kept is written by pread, so zero-filling first would be wasted.
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let result = pread(descriptor.raw, buffer.baseAddress.map { $0 + done }, count - done, off_t(offset + done))
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else { break }
                done += result
            }
            initialized = done
            complete = done == count
        }
        return complete ? bytes : nil
    }
}
