import Foundation
import PagiConfig

/// Who serves (docs/operations.md, *Privileges*). A server started as root binds its listeners as
/// root, then its workers become `server.user`/`server.group` while the supervisor stays root
/// (for the pid file, unix socket files, new listeners and respawns) — as nginx's master and workers
/// do. Serving as root must be asked for (`user: root`), and a switch this process cannot make is
/// refused: a configuration never runs with more privileges than it says.
enum Privileges {
    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    /// The identity the workers must take, or nil when they keep this process's; throws when the
    /// configuration cannot be served as it asks by this process.
    static func workerIdentity(_ runAs: RunAs?) throws(Refused) -> RunAs? {
        let euid = geteuid()
        guard let runAs else {
            if euid == 0 {
                throw Refused(description: "pagi-serve is running as root and the configuration names no user to serve as: "
                    + "set server.user (e.g. www-data) or --user, or user: root to serve as root on purpose")
            }
            return nil
        }
        let at = runAs.location.map { "\($0): " } ?? ""
        if euid == 0 { return runAs.uid == 0 && runAs.gid == 0 ? nil : runAs }
        guard runAs.uid == euid else {
            throw Refused(description: "\(at)cannot become user '\(runAs.user)': pagi-serve runs as '\(RunAs.name(ofUser: euid))', "
                + "and only root can switch users")
        }
        guard runAs.gid == getegid() || groups().contains(runAs.gid) else {
            throw Refused(description: "\(at)cannot take group \(runAs.gid): this process is not in it, and only root can switch groups")
        }
        return nil
    }

    /// Whether this configuration's workers change identity, which needs a supervisor that keeps
    /// root's privileges (even for one worker).
    static func workersDropPrivileges(_ config: Config) -> Bool {
        (try? workerIdentity(config.server.runAs)) != nil
    }

    /// Becomes `runAs` for good: supplementary groups, group, then user — in that order, since once
    /// the user is not root neither of the others can be changed — and checks that root cannot be
    /// taken back.
    static func drop(to runAs: RunAs) throws(Refused) {
        let groupsSet = if let name = runAs.accountName { initgroups(name, runAs.gid) } else { setgroups(1, [runAs.gid]) }
        guard groupsSet == 0, setgid(runAs.gid) == 0, setuid(runAs.uid) == 0 else {
            throw Refused(description: "cannot become user '\(runAs.user)' (uid \(runAs.uid), gid \(runAs.gid)): \(String(cString: strerror(errno)))")
        }
        guard getuid() == runAs.uid, geteuid() == runAs.uid, getgid() == runAs.gid, getegid() == runAs.gid,
              runAs.uid == 0 || setuid(0) != 0 else {
            throw Refused(description: "changed to user '\(runAs.user)' but root's privileges could be taken back: refusing to serve")
        }
    }

    /// Makes the access log file the workers write (and reopen on reload) theirs, as nginx does:
    /// created by root in a directory they may not write to, owned by them.
    static func prepareAccessLog(_ config: Config, for runAs: RunAs) throws(Refused) {
        guard case .file(let path) = config.server.accessLog.to else { return }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw Refused(description: "cannot open the access log '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        guard fchown(descriptor, runAs.uid, runAs.gid) == 0 else {
            throw Refused(description: "cannot give the access log '\(path)' to user '\(runAs.user)': \(String(cString: strerror(errno)))")
        }
    }

    private static func groups() -> [gid_t] {
        var list = [gid_t](repeating: 0, count: max(0, Int(getgroups(0, nil))))
        let count = getgroups(Int32(list.count), &list)
        return count < 0 ? [] : Array(list.prefix(Int(count)))
    }
}
