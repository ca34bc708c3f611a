import Foundation
import PagiEngine

/// A worker process's side of its supervisor (docs/operations.md, *Workers*): the sockets it
/// inherited, and the pipe it reports on (`WorkerMessage`).
struct WorkerLink: Sendable {
    let listeners: [InheritedListener]
    let pipe: Int32
    let supervisor: pid_t

    /// The link a supervisor set up in this process's environment, if it was started by one.
    static func fromEnvironment() -> WorkerLink? {
        let environment = ProcessInfo.processInfo.environment
        guard let sockets = environment[InheritedListener.environmentKey].flatMap(InheritedListener.decode),
              let pipe = environment[WorkerMessage.environmentKey].flatMap(Int32.init),
              let supervisor = environment[WorkerMessage.supervisorKey].flatMap(Int32.init) else { return nil }
        return WorkerLink(listeners: sockets, pipe: pipe, supervisor: supervisor)
    }

    /// The configuration files as the supervisor validated them, handed to a worker in an
    /// unlinked file: a worker started after a reload was refused must load what the supervisor
    /// serves, not the refused file on disk (docs/operations.md, *Reload with workers*).
    static let sourcesKey = "PAGI_CONFIG_SOURCES_FD"

    /// `sources` (absolute path → text) written to an unlinked temporary file; its descriptor, or
    /// nil when it cannot be made (workers then read the files).
    static func writeSources(_ sources: [String: String]) -> Int32? {
        guard let data = try? JSONEncoder().encode(sources) else { return nil }
        var template = Array((FileManager.default.temporaryDirectory.path + "/pagi-serve-config-XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { return nil }
        unlink(template)
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        let written = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        guard written == data.count else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// In a worker: the sources its supervisor handed it (empty in any other process).
    static func sourcesFromSupervisor() -> [String: String] {
        guard let descriptor = ProcessInfo.processInfo.environment[sourcesKey].flatMap(Int32.init) else { return [:] }
        defer { close(descriptor) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while case let count = pread(descriptor, &buffer, buffer.count, off_t(data.count)), count > 0 {
            data.append(contentsOf: buffer[..<count])
        }
        return (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
    }

    func tell(_ message: WorkerMessage) {
        let line = Array((message.rawValue + "\n").utf8)
        _ = line.withUnsafeBytes { write(pipe, $0.baseAddress, $0.count) }
    }

    /// A worker whose supervisor is gone (killed with SIGKILL) stops too, gracefully, rather than
    /// serving on unsupervised. Checked once a second: `prctl(PR_SET_PDEATHSIG)` is variadic in C
    /// and cannot be called from Swift.
    func followSupervisor() {
        // Writing to the pipe of a dead supervisor must fail with EPIPE, not kill this process.
        signal(SIGPIPE, SIG_IGN)
        Thread.detachNewThread { [supervisor] in
            while getppid() == supervisor { Thread.sleep(forTimeInterval: 1) }
            kill(getpid(), SIGTERM)
        }
    }

    /// `max_requests` plus up to a tenth more, so that workers started together do not all leave
    /// together.
    static func jittered(_ requests: Int) -> Int {
        requests + Int.random(in: 0...max(0, requests / 10))
    }
}
