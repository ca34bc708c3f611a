import CSpawn
import Foundation
import PagiEngine

/// Starts pagi-serve processes — a supervisor's workers, a hot upgrade's successor — with chosen
/// descriptors at 3, 4, … (`posix_spawn`; Foundation's `Process` cannot place descriptors), default
/// signal actions and no blocked signal, whatever this process traps.
enum ProcessLauncher {
    /// The signals pagi-serve traps: a trapped signal is ignored in the trapping process, and an
    /// ignored signal would stay ignored in the new one.
    static let trapped = [SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU]

    /// Starts `executable` with `arguments` (argv[0] included) and `environment`; `descriptors[i]`
    /// is at `3 + i` in the new process. `ownProcessGroup`: a terminal's Ctrl-C then reaches this
    /// process alone. The pid, or why not.
    static func spawn(_ executable: String, arguments: [String], environment: [String: String], descriptors: [Int32],
                      ownProcessGroup: Bool) -> Result<pid_t, SpawnError> {
        // Copies above the targets first, so that placing one never overwrites another still to
        // be placed; dup2 in the child clears close-on-exec.
        let sources = descriptors.map { fcntl($0, F_DUPFD_CLOEXEC, Int32(3 + descriptors.count)) }
        defer { for source in sources where source >= 0 { close(source) } }
        guard !sources.contains(where: { $0 < 0 }) else { return .failure(SpawnError(code: errno)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, descriptor) in sources.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(3 + index))
        }
        // Nothing else this process holds goes on, closed in the child itself: a descriptor
        // without close-on-exec — SwiftNIO accepts connections without it — opened by another
        // thread while this one spawns would otherwise reach the new process. A connection kept
        // open there is never closed for its client; a pipe or socket pair kept open would keep
        // whoever watches it waiting for this process's end.
        posix_spawn_file_actions_addclosefrom_np(&actions, Int32(3 + descriptors.count))
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t(), none = sigset_t()
        sigemptyset(&defaults)
        sigemptyset(&none)
        for number in trapped { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &none)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var pid: pid_t = 0
        let status = withCStrings(arguments) { argv in
            withCStrings(environment.map { "\($0.key)=\($0.value)" }) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        return status == 0 ? .success(pid) : .failure(SpawnError(code: status))
    }

    struct SpawnError: Error, CustomStringConvertible {
        let code: Int32
        var description: String { String(cString: strerror(code)) }
    }

    /// Starts `executable` again with this process's arguments, `sockets` at 3, 4, … (announced in
    /// the environment under `socketsKey`, as `InheritedListener.encode` writes them) and each of
    /// `others` after them (its number under its key).
    static func spawnServer(_ executable: String, sockets: [InheritedListener], socketsKey: String,
                            others: [(descriptor: Int32, key: String)], environment: [String: String],
                            ownProcessGroup: Bool) -> Result<pid_t, SpawnError> {
        var environment = environment
        environment[socketsKey] = InheritedListener.encode(sockets.enumerated().map { index, socket in
            InheritedListener(address: socket.address, admin: socket.admin, descriptor: Int32(3 + index))
        })
        for (index, other) in others.enumerated() { environment[other.key] = String(3 + sockets.count + index) }
        return spawn(executable, arguments: [executable] + Array(CommandLine.arguments.dropFirst()), environment: environment,
                     descriptors: sockets.map(\.descriptor) + others.map(\.descriptor), ownProcessGroup: ownProcessGroup)
    }

    /// How a child ended, for the log.
    static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
    }
}

/// Runs `body` with `strings` as a NULL-terminated C array (argv, envp for posix_spawn).
private func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
