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
