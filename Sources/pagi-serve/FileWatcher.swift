import Foundation

/// `--watch` (docs/cli.md): looks at the configuration's files once a second and says when one
/// changed (modification time, size, inode — an editor that saves by renaming a new file over
/// the old one changes the inode) or appeared or vanished. Polling rather than inotify: a handful
/// of files, and the same code on every platform.
struct FileWatcher: Sendable {
    /// The files to watch, asked again after each change (a reload may add or drop some).
    let files: @Sendable () -> [String]

    private struct Stamp: Equatable {
        var modified: timespec?
        var size: Int64
        var inode: UInt64

        static func == (a: Stamp, b: Stamp) -> Bool {
            a.modified?.tv_sec == b.modified?.tv_sec && a.modified?.tv_nsec == b.modified?.tv_nsec
                && a.size == b.size && a.inode == b.inode
        }
    }

    private static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(modified: info.st_mtim, size: Int64(info.st_size), inode: UInt64(info.st_ino))
    }

    private func snapshot() -> [String: Stamp?] {
        Dictionary(files().map { ($0, Self.stamp($0)) }, uniquingKeysWith: { first, _ in first })
    }

    /// Calls `changed` with the first changed file's path, then watches the files as they are after it.
    func run(_ changed: (String) -> Void) -> Never {
        var known = snapshot()
        while true {
            Thread.sleep(forTimeInterval: 1)
            guard let path = known.first(where: { Self.stamp($0.key) != $0.value })?.key else { continue }
            // Let an editor finish writing (several writes, or a write then a rename).
            Thread.sleep(forTimeInterval: 0.2)
            let settled = snapshot()
            changed(path)
            // Stamps from before the reload, so that a change made during it is seen next time;
            // files the reload added start from how they are now.
            known = snapshot().reduce(into: [:]) { $0[$1.key] = settled[$1.key] ?? $1.value }
        }
    }
}
