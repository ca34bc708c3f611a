import Foundation
import PagiTestSupport
import Synchronization
import XCTest

/// Hot binary upgrade (docs/operations.md, *Hot binary upgrade*): SIGUSR2 starts the executable
/// now installed where the server was started from, hands it the listening sockets, and the old
/// process drains and exits once the new one serves — with no request failing meanwhile. A
/// successor that cannot start leaves the old process serving.
///
/// Release binary (`PAGI_RELEASE_BINARY`): the two processes accept from the same sockets for a
/// moment, which a debug build of SwiftNIO asserts never happens.
final class HotUpgradeTests: XCTestCase {
    private var dir: URL!
    private var served: ServedProcess?
    private var release: URL!
    private var port = 0

    override func setUpWithError() throws {
        guard let binary = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"],
              FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("PAGI_RELEASE_BINARY names no release build of pagi-serve (scripts/test sets it)")
        }
        release = URL(fileURLWithPath: binary)
        dir = try makeTemporaryDirectory()
        port = try freePort()
    }

    override func tearDownWithError() throws {
        served?.kill()
        // Skipped before anything was made (no release binary).
        guard let dir else { return }
        // The successor is not a child of this test: it is found by its pid file.
        if let pid = successor { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: dir)
    }

    private var successor: Int32? {
        (try? String(contentsOf: dir.appendingPathComponent("server.pid"), encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private var socketPath: String { dir.appendingPathComponent("srv.sock").path }

    /// Installs `script` as the `pagi-serve` the server was started as (what a package upgrade does).
    private func install(_ script: String) throws {
        let installed = dir.appendingPathComponent("bin/pagi-serve")
        try? FileManager.default.removeItem(at: installed)
        try writeFile(dir, "bin/pagi-serve", script)
        XCTAssertEqual(chmod(installed.path, 0o755), 0)
    }

    private func start(workers: Int) throws -> ServedProcess {
        try writeFile(dir, "config.yaml", """
            server:
              listen: ["127.0.0.1:\(port)", "unix:srv.sock"]
              access_log: {to: off}
              pid_file: server.pid
              workers: \(workers)
            hosts:
              - names: [localhost]
                routes:
                  - {path: /, respond: {body: served}}
            """)
        // Started as bin/pagi-serve, a copy of the release binary.
        let binary = dir.appendingPathComponent("bin/pagi-serve")
        try FileManager.default.createDirectory(at: binary.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: release, to: binary)
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: binary)
        served = process
        try process.waitForLog(workers > 1 ? "worker" : "listening on unix:")
        try waitUntil("serving") { RawClient.get(port: port, "/")?.text == "served" }
        return process
    }

    private func waitUntil(_ what: String, timeout: TimeInterval = 20, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw ServedProcess.NotLogged(awaited: what, log: served?.log ?? "") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Requests on new connections from several clients at once, until stopped: how many, and
    /// how many failed. Several, so that connections are being accepted at every moment of the
    /// hand-over — the moment the old process stops accepting above all.
    private final class Load: @unchecked Sendable {
        private let stopped = Atomic<Bool>(false)
        let counts = Mutex((done: 0, failed: 0))
        private let finished = DispatchGroup()

        init(port: Int, clients: Int = 4) {
            for _ in 0..<clients {
                finished.enter()
                Thread.detachNewThread { [self] in
                    while !stopped.load(ordering: .relaxed) {
                        let ok = RawClient.get(port: port, "/")?.text == "served"
                        counts.withLock { $0.done += 1; if !ok { $0.failed += 1 } }
                    }
                    finished.leave()
                }
            }
        }

        func stop() -> (done: Int, failed: Int) {
            stopped.store(true, ordering: .relaxed)
            finished.wait()
            return counts.withLock { $0 }
        }
    }

    /// The sockets `pid` holds open.
    private func openSockets(of pid: Int32) -> Int {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return descriptors.filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)"))?.hasPrefix("socket:") == true
        }.count
    }

    /// A unix datagram socket standing in for systemd's `NOTIFY_SOCKET`: what the server tells it.
    private final class NotifySocket {
        let path: String
        private let descriptor: Int32

        init(path: String) {
            self.path = path
            descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }

        deinit { close(descriptor) }

        /// The next message, waiting up to 10 s.
        func next() -> String? {
            var polled = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
            guard poll(&polled, 1, 10_000) > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = recv(descriptor, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
        }
    }

    private func upgradesWithoutAFailedRequest(workers: Int) throws {
        // systemd's readiness protocol: READY=1 at start, the successor names itself MAINPID.
        let notify = NotifySocket(path: dir.appendingPathComponent("notify.sock").path)
        setenv("NOTIFY_SOCKET", notify.path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let old = try start(workers: workers)
        XCTAssertEqual(notify.next(), "READY=1")
        let oldPid = old.pid
        // The new version: marks that it was the one started, then runs the real server.
        try install("#!/bin/sh\necho \"$$\" > upgraded-by-script\nexec '\(release.path)' \"$@\"\n")
        let load = Load(port: port)
        try waitUntil("load running") { load.counts.withLock { $0.done } > 50 }
        old.signal(SIGUSR2)
        try old.waitForLog("serves now")
        XCTAssertEqual(old.waitForExit(), 0, old.log)
        try waitUntil("requests after the switch") { load.counts.withLock { $0.done } > 200 }
        let (done, failed) = load.stop()
        XCTAssertEqual(failed, 0, "\(failed) of \(done) requests failed during the upgrade\n\(old.log)")

        let new = try XCTUnwrap(successor)
        XCTAssertNotEqual(new, oldPid)
        XCTAssertEqual(kill(new, 0), 0, "the successor runs")
        if workers == 1 {
            // Its two listeners and nothing else: no connection of the old process reached it.
            try? waitUntil("the last connections closed", timeout: 5) { openSockets(of: new) <= 2 }
            XCTAssertEqual(openSockets(of: new), 2, "sockets the successor holds")
        }
        let started = try String(contentsOf: dir.appendingPathComponent("upgraded-by-script"), encoding: .utf8)
        XCTAssertEqual(Int32(started.trimmingCharacters(in: .whitespacesAndNewlines)), new, "the installed executable was started")
        XCTAssertEqual(RawClient.get(port: port, "/")?.text, "served")
        XCTAssertTrue(FileManager.default.fileExists(atPath: socketPath), "the old process left the socket file to its successor")
        XCTAssertTrue(old.log.contains("hot upgrade: process \(new) serves now"), old.log)
        XCTAssertEqual(notify.next(), "MAINPID=\(new)\nREADY=1")

        // The successor is a complete server: it stops on SIGTERM and cleans up after itself.
        kill(new, SIGTERM)
        try waitUntil("the successor stopped") { kill(new, 0) != 0 }
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketPath))
        XCTAssertNil(successor)
    }

    func testASingleServerHandsItsSocketsToTheInstalledExecutable() throws {
        try upgradesWithoutAFailedRequest(workers: 1)
    }

    func testASupervisorHandsItsSocketsToTheInstalledExecutable() throws {
        try upgradesWithoutAFailedRequest(workers: 2)
    }

    func testAFailedUpgradeLeavesTheOldServerServing() throws {
        let old = try start(workers: 1)
        try install("#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
        old.signal(SIGUSR2)
        try old.waitForLog("hot upgrade failed: the new process")
        XCTAssertTrue(old.log.contains("exited with status 3 before it served; still serving"), old.log)
        XCTAssertEqual(RawClient.get(port: port, "/")?.text, "served")
        XCTAssertEqual(successor, old.pid, "the pid file still names the old process")
        // A second attempt with a good build then succeeds.
        try install("#!/bin/sh\nexec '\(release.path)' \"$@\"\n")
        old.signal(SIGUSR2)
        try old.waitForLog("serves now")
        XCTAssertEqual(old.waitForExit(), 0)
        XCTAssertEqual(RawClient.get(port: port, "/")?.text, "served")
    }
}
