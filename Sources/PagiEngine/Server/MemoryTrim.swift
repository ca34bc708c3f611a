#if canImport(CMalloc)
import CMalloc
#endif
import NIOCore
import Synchronization

/// Gives memory freed in bulk back to the system (docs/performance.md, *Memory given back*). glibc
/// keeps what is freed in its arenas for reuse; after a burst — streams that queued up to their
/// limit for clients that did not read, then were dropped — the process would keep that peak as
/// its resident size for good. `malloc_trim` returns the free pages. It walks the heap, so it runs
/// at most once a second, a second after a stream that held at least `threshold` ended (a burst of
/// drops is one trim), on the loop that asked.
enum MemoryTrim {
    /// A stream that had this much queued for its client at some point is worth a trim when it ends.
    static let threshold = 256 * 1024
    private static let scheduled = Atomic(false)

    static func soon(on loop: any EventLoop) {
        guard scheduled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        loop.scheduleTask(in: .seconds(1)) {
            scheduled.store(false, ordering: .relaxed)
            #if canImport(CMalloc)
            _ = malloc_trim(0)
            #endif
        }
    }
}
