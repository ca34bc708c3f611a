#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PagiConfig

/// The `struct stat` type (its name is shadowed by the function inside types).
typealias RawFileInfo = stat

/// An owned file descriptor: closed when the last reference goes away unless handed over.
/// Lives within one request, so it is deliberately not `Sendable`.
final class Descriptor {
    private(set) var raw: Int32

    init(_ raw: Int32) { self.raw = raw }

    /// Hands the descriptor over (to an `OpenFile`); this object no longer closes it.
    func release() -> Int32 {
        defer { raw = -1 }
        return raw
    }

    deinit {
        if raw >= 0 { _ = close(raw) }
    }
}

/// What `fstat` said about an open descriptor.
struct FileStatus: Sendable {
    enum Kind: Sendable { case regular, directory, symbolicLink, other }
    var kind: Kind
    var size: Int
    var device: UInt64
    var inode: UInt64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
    /// Status-change time: unlike mtime, no one can set it, so a replaced file that reuses an
    /// inode number with the same size and a copied mtime (tar, rsync -t) still looks new.
    var changedNanoseconds: Int

    init(_ info: RawFileInfo) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        default: kind = .other
        }
        size = Int(info.st_size)
        device = UInt64(truncatingIfNeeded: info.st_dev)
        inode = UInt64(truncatingIfNeeded: info.st_ino)
        #if canImport(Darwin)
        modifiedSeconds = Int(info.st_mtimespec.tv_sec)
        modifiedNanoseconds = Int(info.st_mtimespec.tv_nsec)
        changedNanoseconds = Int(info.st_ctimespec.tv_sec) &* 1_000_000_000 &+ Int(info.st_ctimespec.tv_nsec)
        #else
        modifiedSeconds = Int(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
        changedNanoseconds = Int(info.st_ctim.tv_sec) &* 1_000_000_000 &+ Int(info.st_ctim.tv_nsec)
        #endif
    }

    /// Strong entity-tag from the identity of this version of the file and its content coding.
    func entityTag(encoding: StaticConfig.Encoding?) -> String {
        let modified = modifiedSeconds &* 1_000_000_000 &+ modifiedNanoseconds
        let base = String(inode, radix: 16) + "-" + String(size, radix: 16) + "-" + String(modified, radix: 16)
        return "\"" + base + (encoding.map { "-" + $0.rawValue } ?? "") + "\""
    }
}

/// Why a path could not be served, as the status to answer with.
enum FileLookupFailure: Error, Equatable {
    case notFound, forbidden, unavailable, failed

    init(errno code: Int32) {
        switch code {
        case EACCES, EPERM: self = .forbidden
        case EMFILE, ENFILE: self = .unavailable
        case ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, ENXIO, EINVAL: self = .notFound
        default: self = .failed
        }
    }

    var status: Int {
        switch self {
        case .notFound: return 404
        case .forbidden: return 403
        case .unavailable: return 503
        case .failed: return 500
        }
    }
}

struct OpenedEntry {
    let descriptor: Descriptor
    let status: FileStatus
}

/// A file opened below the root, with the directory it was found in (for its precompressed siblings).
struct LocatedEntry {
    /// nil when the entry is the root itself.
    let parent: Descriptor?
    let name: String
    let entry: OpenedEntry
}

struct DirectoryEntry: Equatable {
    var name: String
    var isDirectory: Bool
    var size: Int
    var modifiedSeconds: Int
}

/// Opens files below `root` under the symlink policy. Every decision is taken on open
/// descriptors (`openat`, `fstat`), never on a path checked first and opened later.
struct StaticFileSystem: Sendable {
    let root: String
    let symlinks: StaticConfig.Symlinks
    /// `realpath(root)` when the handler was built; recomputed per request if the root did not exist yet.
    private let resolvedRootAtStart: String?

    init(root: String, symlinks: StaticConfig.Symlinks) {
        self.root = root
        self.symlinks = symlinks
        resolvedRootAtStart = Self.realPath(root)
    }

    /// Opens the entry at `segments` below the root (the root itself for none).
    func locate(_ segments: [String]) -> Result<LocatedEntry, FileLookupFailure> {
        let rootDescriptor = open(root, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard rootDescriptor >= 0 else { return .failure(FileLookupFailure(errno: errno)) }
        let rootEntry = Descriptor(rootDescriptor)
        guard !segments.isEmpty else {
            return status(of: rootEntry).map { LocatedEntry(parent: nil, name: "", entry: $0) }
        }
        return locate(segments, below: rootEntry)
    }

    /// Opens `segments` (at least one) below the directory `base`.
    func locate(_ segments: [String], below base: Descriptor) -> Result<LocatedEntry, FileLookupFailure> {
        guard let name = segments.last else { return .failure(.notFound) }
        var parent = base
        let directories = segments.dropLast()
        if symlinks == .inside, let direct = try? openWithoutLinks(segments, below: base) {
            // No link on the way: inside the root by construction, no real-path check needed.
            return .success(direct)
        }
        if symlinks == .never {
            // One component at a time, so a link anywhere on the way is refused (ELOOP).
            for directory in directories {
                let next = openat(parent.raw, directory, O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW)
                guard next >= 0 else { return .failure(FileLookupFailure(errno: errno)) }
                parent = Descriptor(next)
            }
        } else if !directories.isEmpty {
            let next = openat(parent.raw, directories.joined(separator: "/"), O_RDONLY | O_CLOEXEC | O_DIRECTORY)
            guard next >= 0 else { return .failure(FileLookupFailure(errno: errno)) }
            parent = Descriptor(next)
        }
        return openEntry(named: name, in: parent).map { LocatedEntry(parent: parent, name: name, entry: $0) }
    }

    /// Opens `segments` one component at a time refusing links (ELOOP), so a success proves
    /// the file is below `base` without resolving its real path.
    private func openWithoutLinks(_ segments: [String], below base: Descriptor) throws(FileLookupFailure) -> LocatedEntry {
        guard let name = segments.last else { throw .notFound }
        var parent = base
        for directory in segments.dropLast() {
            let next = openat(parent.raw, directory, O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW)
            guard next >= 0 else { throw FileLookupFailure(errno: errno) }
            parent = Descriptor(next)
        }
        let raw = openat(parent.raw, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
        guard raw >= 0 else { throw FileLookupFailure(errno: errno) }
        return try status(of: Descriptor(raw)).map { LocatedEntry(parent: parent, name: name, entry: $0) }.get()
    }

    /// Opens one directory entry under the policy; with `inside`, the opened file's real path
    /// must lie below the real root.
    func openEntry(named name: String, in directory: Descriptor) -> Result<OpenedEntry, FileLookupFailure> {
        // O_NONBLOCK: opening a FIFO must not hang the event loop; it is refused after fstat.
        let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (symlinks == .never ? O_NOFOLLOW : 0)
        let raw = openat(directory.raw, name, flags)
        guard raw >= 0 else { return .failure(FileLookupFailure(errno: errno)) }
        let descriptor = Descriptor(raw)
        if symlinks == .inside, !isInsideRoot(descriptor) { return .failure(.notFound) }
        return status(of: descriptor)
    }

    /// Whether a regular file `name` exists in `directory` (a cheap check for precompressed siblings).
    func regularFileExists(named name: String, in directory: Descriptor) -> Bool {
        var info = RawFileInfo()
        let flags = symlinks == .never ? AT_SYMLINK_NOFOLLOW : 0
        return fstatat(directory.raw, name, &info, flags) == 0 && FileStatus(info).kind == .regular
    }

    /// Regular files and directories in `directory`; links follow the policy like requests do.
    func entries(of directory: Descriptor) -> [DirectoryEntry] {
        let duplicate = dup(directory.raw)
        guard duplicate >= 0 else { return [] }
        guard let stream = fdopendir(duplicate) else {
            _ = close(duplicate)
            return []
        }
        defer { closedir(stream) }
        var result: [DirectoryEntry] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(validatingCString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            guard let name, name != ".", name != ".." else { continue }
            guard let status = listingStatus(named: name, in: directory) else { continue }
            guard status.kind == .regular || status.kind == .directory else { continue }
            result.append(DirectoryEntry(name: name, isDirectory: status.kind == .directory, size: status.size,
                                         modifiedSeconds: status.modifiedSeconds))
        }
        return result
    }

    private func listingStatus(named name: String, in directory: Descriptor) -> FileStatus? {
        var info = RawFileInfo()
        guard fstatat(directory.raw, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        let status = FileStatus(info)
        guard status.kind == .symbolicLink else { return status }
        guard symlinks != .never else { return nil }
        return try? openEntry(named: name, in: directory).get().status
    }

    private func status(of descriptor: Descriptor) -> Result<OpenedEntry, FileLookupFailure> {
        var info = RawFileInfo()
        guard fstat(descriptor.raw, &info) == 0 else { return .failure(FileLookupFailure(errno: errno)) }
        let status = FileStatus(info)
        // O_NONBLOCK stays set: it has no effect on reads or sendfile of regular files.
        return .success(OpenedEntry(descriptor: descriptor, status: status))
    }

    private func isInsideRoot(_ descriptor: Descriptor) -> Bool {
        guard let resolvedRoot = resolvedRootAtStart ?? Self.realPath(root),
              let path = Self.path(of: descriptor) else { return false }
        return path == resolvedRoot || path.hasPrefix(resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/")
    }

    /// The real path of an open descriptor, so the check cannot race with a link swapped in later.
    private static func path(of descriptor: Descriptor) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        #if canImport(Darwin)
        guard fcntl(descriptor.raw, F_GETPATH, &buffer) == 0 else { return nil }
        let count = buffer.firstIndex(of: 0) ?? buffer.count
        #else
        let count = readlink("/proc/self/fd/\(descriptor.raw)", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        #endif
        return String(validating: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(validatingCString: resolved)
    }
}
