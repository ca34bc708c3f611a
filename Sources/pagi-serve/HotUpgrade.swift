import Foundation
import PagiEngine

/// Hot binary upgrade (SIGUSR2; docs/operations.md, *Hot binary upgrade*), as nginx does it but
/// without the operator's second step: the running process (the supervisor, or the single server)
/// starts the executable now installed where it was started from, hands it its listening sockets
/// and waits. Once the successor serves — a single server listening, a supervisor with all its
/// workers ready — it says so on a pipe, and the old process drains and exits, leaving its unix
/// socket files and the pid file (which the successor took over) in place. Both accept on the
/// same sockets for a moment, so no connection is refused. If the successor fails to start, the
/// old process learns it from the pipe closing and serves on.
enum HotUpgrade {
    /// The successor's side: the sockets, the pipe to say "ready" on, and the pid it replaces.
    static let listenersKey = "PAGI_UPGRADE_LISTEN_FDS"
    static let notifyKey = "PAGI_UPGRADE_NOTIFY_FD"
    static let predecessorKey = "PAGI_UPGRADE_FROM"
    /// How long a successor may take to be ready before it is given up (and stopped).
    static let readyLimit: TimeInterval = 60

    /// What a successor got from the process it replaces.
    struct Predecessor: Sendable {
        let pid: pid_t
        let listeners: [InheritedListener]
        private let notify: Int32

        /// Read once at start, and taken out of the environment: the workers this process starts,
        /// and its own successor, must not see them.
        static func fromEnvironment() -> Predecessor? {
            let environment = ProcessInfo.processInfo.environment
            defer { for key in [listenersKey, notifyKey, predecessorKey] { unsetenv(key) } }
            guard let pid = environment[predecessorKey].flatMap(Int32.init),
                  let notify = environment[notifyKey].flatMap(Int32.init),
                  let passed = environment[listenersKey].flatMap(InheritedListener.decode) else { return nil }
            _ = fcntl(notify, F_SETFD, FD_CLOEXEC)
            // Moved out of the way of the descriptors workers receive sockets at, and close-on-exec.
            let listeners = passed.compactMap { socket -> InheritedListener? in
                defer { close(socket.descriptor) }
                return socket.copied()
            }
            return Predecessor(pid: pid, listeners: listeners, notify: notify)
        }

        /// Tells the old process that this one serves: it drains and exits.
        func tellReady() {
            let line = Array("ready\n".utf8)
            _ = line.withUnsafeBytes { write(notify, $0.baseAddress, $0.count) }
            close(notify)
        }
    }

    enum Outcome: Sendable {
        case ready(pid_t)
        case failed(String)
    }

    /// Starts the successor with copies of `sockets` (closed here once it has its own) and calls
    /// `done` on another thread when it is ready or has failed.
    static func begin(sockets: [InheritedListener], done: @escaping @Sendable (Outcome) -> Void) {
        defer { for socket in sockets { close(socket.descriptor) } }
        guard let executable = installedExecutable() else {
            done(.failed("cannot find the executable '\(CommandLine.arguments[0])' was started as"))
            return
        }
        var channel: [Int32] = [0, 0]
        guard pipe(&channel) == 0 else {
            done(.failed("no pipe: \(String(cString: strerror(errno)))"))
            return
        }
        let (readEnd, writeEnd) = (channel[0], channel[1])
        for end in [readEnd, writeEnd] { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var environment = ProcessInfo.processInfo.environment
        // Sockets systemd passed to this process are in `sockets` already, by address.
        for key in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] { environment[key] = nil }
        environment[predecessorKey] = String(getpid())
        let started = ProcessLauncher.spawnServer(executable, sockets: sockets, socketsKey: listenersKey, others: [(writeEnd, notifyKey)],
                                                  environment: environment, ownProcessGroup: false)
        close(writeEnd)
        guard case .success(let pid) = started else {
            close(readEnd)
            if case .failure(let error) = started { done(.failed("cannot start \(executable): \(error)")) }
            return
        }
        Thread.detachNewThread {
            done(awaitReady(pid, readEnd))
            close(readEnd)
        }
    }

    /// "ready" on the pipe, or why not: the successor closed it by ending, or took too long.
    private static func awaitReady(_ pid: pid_t, _ pipe: Int32) -> Outcome {
        var received = ""
        let deadline = Date().addingTimeInterval(readyLimit)
        while Date() < deadline {
            var polled = [pollfd(fd: pipe, events: Int16(POLLIN), revents: 0)]
            guard poll(&polled, 1, 200) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(pipe, &buffer, buffer.count)
            if count > 0 {
                // Only the end matters: whatever else arrives cannot grow this.
                received = String((received + String(decoding: buffer[..<count], as: UTF8.self)).suffix(16))
                if received.contains("ready\n") { return .ready(pid) }
                continue
            }
            // Closed: the successor ended (or is ending) without serving.
            var status: Int32 = 0
            let ended = waitpid(pid, &status, 0) == pid
            return .failed("the new process \(pid) \(ended ? ProcessLauncher.describe(status: status) : "ended") before it served")
        }
        kill(pid, SIGTERM)
        return .failed("the new process \(pid) was not ready within \(Int(readyLimit)) s: stopped it")
    }

    /// The executable now at the path this process was started from — argv[0], searched in PATH
    /// when it names no directory — which is the new version after a package upgrade (unlike
    /// /proc/self/exe, which stays the old one).
    private static func installedExecutable() -> String? {
        let name = CommandLine.arguments[0]
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }
}
