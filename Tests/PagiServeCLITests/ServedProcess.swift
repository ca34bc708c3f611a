import Foundation
import Synchronization

/// `pagi-serve` run as a child process, its standard error collected as it comes.
final class ServedProcess: @unchecked Sendable {
    // @unchecked: `process` is used from the test thread only; the log is behind a lock.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("pagi-serve")
    }

    private let process = Process()
    private let collected = Mutex("")

    /// The user running the tests, by name: passed as `--user` (appended to `arguments`), so that
    /// a test run as root serves as root on purpose (docs/operations.md, *Privileges*).
    static var currentUser: String {
        getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? String(geteuid())
    }

    init(arguments: [String], directory: URL, binary: URL = ServedProcess.binary, servingAs user: String? = ServedProcess.currentUser) throws {
        process.executableURL = binary
        process.arguments = arguments + (user.map { ["--user", $0] } ?? [])
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        errors.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            collected.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Runs the binary to the end (`check`, `cert`…) in `directory`: its status and what it printed.
    static func run(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
    var log: String { collected.withLock { $0 } }

    func signal(_ number: Int32) { Foundation.kill(process.processIdentifier, number) }

    struct NotLogged: Error, CustomStringConvertible {
        let awaited: String
        let log: String
        var description: String { "'\(awaited)' never appeared in the server log:\n\(log)" }
    }

    /// Waits until the log contains `text`; throws (failing the test) when it does not in time.
    func waitForLog(_ text: String, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !log.contains(text) {
            guard Date() < deadline, process.isRunning else { throw NotLogged(awaited: text, log: log) }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// The exit status, once the process ended (killed after 20 s).
    func waitForExit() -> Int32 {
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning { signal(SIGKILL) }
    }
}
