import Foundation

/// `server.pid_file` (docs/operations.md): the serving process's pid, written atomically (a
/// temporary file renamed over it), removed on exit, and refused while another live pagi-serve
/// holds it — a second server started by mistake must not take over the first one's file.
struct PidFile: Sendable {
    let path: String

    struct Held: Error, CustomStringConvertible {
        let path: String
        let pid: Int32
        var description: String { "pid_file '\(path)' is held by another running pagi-serve (pid \(pid))" }
    }

    /// `replacing`: the process this one replaces in a hot upgrade, which may hold the file.
    static func claim(_ path: String, replacing predecessor: pid_t? = nil) throws -> PidFile {
        if let holder = livingHolder(of: path), holder != predecessor { throw Held(path: path, pid: holder) }
        try write(path)
        return PidFile(path: path)
    }

    /// Writes this process's pid again (a hot upgrade that failed may have left the successor's,
    /// or none).
    func rewrite() {
        try? Self.write(path)
    }

    private static func write(_ path: String) throws {
        let temporary = path + ".\(getpid()).tmp"
        try Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot write pid_file '\(path)': \(reason)"])
        }
    }

    /// Removes the file if it still names this process (a successor may have claimed it since).
    func remove() {
        guard Self.pid(in: path) == getpid() else { return }
        unlink(path)
    }

    private static func pid(in path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The pid in the file when it is another process that is alive and is a pagi-serve (a pid
    /// left by a crash may since belong to an unrelated process).
    private static func livingHolder(of path: String) -> Int32? {
        guard let pid = pid(in: path), pid > 0, pid != getpid() else { return nil }
        guard kill(pid, 0) == 0 || errno == EPERM else { return nil }
        guard let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return pid }
        return command.contains("pagi-serve") ? pid : nil
    }
}
