import Foundation
import NIOSSL
import PagiTestSupport
import XCTest

/// The supervisor and its worker processes (docs/operations.md, *Workers*), driven by real
/// signals: respawn, heartbeat, `max_requests` recycling without a failed request, SIGTTIN/SIGTTOU,
/// reload, graceful stop, and workers that outlive their supervisor.
///
/// These run the release binary (`PAGI_RELEASE_BINARY`, set by `scripts/test`): several processes
/// accepting from one socket wake together and all but one find nothing to accept, which a debug
/// build of SwiftNIO asserts never happens.
final class WorkerProcessTests: XCTestCase {
    private var dir: URL!
    private var served: ServedProcess?
    private var port = 0

    override func setUpWithError() throws {
        guard let binary = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"],
              FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("PAGI_RELEASE_BINARY names no release build of pagi-serve (scripts/test sets it)")
        }
        dir = try makeTemporaryDirectory()
        port = try freePort()
    }

    override func tearDownWithError() throws {
        if let served {
            let workers = children(of: served.pid)
            served.kill()
            for pid in workers { kill(pid, SIGKILL) }
        }
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func writeConfig(body: String = "one", server: String = "", extraListen: Int? = nil, accessLog: String = "off") throws {
        let listen = ["127.0.0.1:\(port)"] + (extraListen.map { ["127.0.0.1:\($0)"] } ?? [])
        try writeFile(dir, "config.yaml", """
            server:
              listen: [\(listen.map { "\"\($0)\"" }.joined(separator: ", "))]
              access_log: {to: \(accessLog)}
              pid_file: server.pid
            \(server)
            hosts:
              - names: [localhost]
                routes:
                  - {path: /, respond: {body: \(body)}}
            """)
    }

    /// Starts the supervisor and waits until `workers` workers are running.
    private func start(workers: Int, servingAs user: String? = ServedProcess.currentUser) throws -> ServedProcess {
        let binary = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"] ?? "")
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: binary, servingAs: user)
        served = process
        try waitUntil("\(workers) workers running") { children(of: process.pid).count == workers && answers() == "one" }
        return process
    }

    private func answers(_ port: Int? = nil) -> String? { RawClient.get(port: port ?? self.port, "/")?.text }

    private func waitUntil(_ what: String, timeout: TimeInterval = 15, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw ServedProcess.NotLogged(awaited: what, log: served?.log ?? "") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Alive and not a zombie (an orphan's zombie waits for whoever adopted it to reap it).
    private func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return false
        }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    /// The processes whose parent is `pid` (from /proc/*/stat).
    private func children(of pid: Int32) -> Set<Int32> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return Set(entries.compactMap { entry -> Int32? in
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // After "pid (name)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
        })
    }

    func testWorkersShareTheListenerAndADeadOneIsReplaced() throws {
        try writeConfig(server: "  workers: 2")
        let process = try start(workers: 2)
        let before = children(of: process.pid)
        for _ in 0..<50 { XCTAssertEqual(answers(), "one") }
        let victim = try XCTUnwrap(before.first)
        kill(victim, SIGKILL)
        try process.waitForLog("worker \(victim) was killed by signal 9")
        try waitUntil("a replacement") { let now = children(of: process.pid); return now.count == 2 && !now.contains(victim) }
        for _ in 0..<50 { XCTAssertEqual(answers(), "one") }
    }

    func testMaxRequestsRecyclesWorkersWithoutAFailedRequest() throws {
        try writeConfig(server: "  workers: 2\n  max_requests: 25")
        let process = try start(workers: 2)
        let first = children(of: process.pid)
        var failed = 0
        for _ in 0..<300 where answers() != "one" { failed += 1 }
        XCTAssertEqual(failed, 0, "no request fails while workers are replaced")
        XCTAssertGreaterThanOrEqual(process.log.components(separatedBy: "reached max_requests").count - 1, 4, process.log)
        XCTAssertTrue(children(of: process.pid).isDisjoint(with: first), "every first worker was recycled")
    }

    func testAHungWorkerIsKilledAndReplaced() throws {
        try writeConfig(server: "  workers: 2")
        let process = try start(workers: 2)
        let hung = try XCTUnwrap(children(of: process.pid).first)
        kill(hung, SIGSTOP)
        try process.waitForLog("worker \(hung) hung (no heartbeat", timeout: 20)
        try waitUntil("a replacement") { let now = children(of: process.pid); return now.count == 2 && !now.contains(hung) }
    }

    func testSIGTTINAndSIGTTOUAddAndRemoveAWorker() throws {
        try writeConfig(server: "  workers: 2")
        let process = try start(workers: 2)
        process.signal(SIGTTIN)
        try waitUntil("3 workers") { children(of: process.pid).count == 3 }
        // One at a time: two of the same signal sent at once may arrive as one.
        process.signal(SIGTTOU)
        try waitUntil("2 workers") { children(of: process.pid).count == 2 }
        process.signal(SIGTTOU)
        try waitUntil("1 worker") { children(of: process.pid).count == 1 }
        XCTAssertEqual(answers(), "one")
    }

    func testReloadReachesEveryWorkerAndAListenerChangeReplacesThem() throws {
        try writeConfig(server: "  workers: 2")
        let process = try start(workers: 2)
        try writeConfig(body: "two", server: "  workers: 2")
        process.signal(SIGHUP)
        try waitUntil("every worker reloaded") { (0..<20).allSatisfy { _ in answers() == "two" } }

        let other = try freePort()
        let first = children(of: process.pid)
        try writeConfig(body: "three", server: "  workers: 2", extraListen: other)
        process.signal(SIGHUP)
        try process.waitForLog("replacing the workers one at a time")
        try waitUntil("a new generation on both listeners") {
            children(of: process.pid).isDisjoint(with: first) && children(of: process.pid).count == 2 && answers(other) == "three"
        }
        XCTAssertEqual(answers(), "three")
    }

    func testSIGTERMDrainsEveryWorkerAndWorkersStopWithoutTheirSupervisor() throws {
        try writeConfig(server: "  workers: 2")
        let process = try start(workers: 2)
        let workers = children(of: process.pid)
        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("server.pid").path))
        try waitUntil("the workers gone") { !workers.contains(where: isRunning) }

        let again = try start(workers: 2)
        let orphans = children(of: again.pid)
        again.kill()
        _ = again.waitForExit()
        try waitUntil("workers of a killed supervisor stop") { !orphans.contains(where: isRunning) }
        served = nil
    }

    /// The real, effective, saved and file-system ids of `pid` (the `Uid:` or `Gid:` line of /proc).
    private func ids(of pid: Int32, _ kind: String) -> [UInt32] {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("\(kind):") } ?? ""
        return line.split(whereSeparator: \.isWhitespace).dropFirst().compactMap { UInt32($0) }
    }

    private func owner(of path: String) -> UInt32? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_uid : nil
    }

    private func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// As root (docs/operations.md, *Privileges*): the supervisor binds the listener and stays root,
    /// its workers become `server.user` for good (real, effective, saved ids); the access log is
    /// theirs, in a directory only root may write, and so is the new file after a rotation.
    func testWorkersDropToTheConfiguredUserAndKeepWritingTheirLog() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root: only root can switch users")
        guard let account = getpwnam("nobody")?.pointee else { throw XCTSkip("this system has no user 'nobody'") }
        let (uid, gid) = (account.pw_uid, account.pw_gid)
        XCTAssertEqual(chmod(dir.path, 0o755), 0)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        let log = dir.appendingPathComponent("logs/access.log").path
        try writeConfig(server: "  workers: 2\n  user: nobody", accessLog: "logs/access.log")
        let process = try start(workers: 2, servingAs: nil)
        let workers = children(of: process.pid)
        for worker in workers {
            XCTAssertEqual(ids(of: worker, "Uid"), [uid, uid, uid, uid], "worker \(worker)")
            XCTAssertEqual(ids(of: worker, "Gid"), [gid, gid, gid, gid], "worker \(worker)")
        }
        XCTAssertEqual(ids(of: process.pid, "Uid"), [0, 0, 0, 0], "the supervisor stays root")
        XCTAssertEqual(owner(of: log), uid)
        try waitUntil("the request in the access log") { contents(log).contains("\"GET / HTTP/1.1\" 200") }

        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        process.signal(SIGHUP)
        try waitUntil("a new log after the rotation") { _ = answers(); return contents(log).contains("\"GET / HTTP/1.1\" 200") }
        XCTAssertEqual(owner(of: log), uid)
        XCTAssertEqual(children(of: process.pid), workers, "a reload keeps the workers")
    }

    /// Workers that serve as `nobody` cannot read a key only root may read: the supervisor reads
    /// the certificate and key and hands them over, as nginx's master does; a reload replaces the
    /// workers so that they get the files again (docs/operations.md, *Privileges*).
    func testWorkersWithoutPrivilegesServeTLSWithAKeyOnlyRootReads() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root: only root can switch users")
        guard getpwnam("nobody") != nil else { throw XCTSkip("this system has no user 'nobody'") }
        XCTAssertEqual(chmod(dir.path, 0o755), 0)
        let ca = try TestCertificateAuthority(in: dir.appendingPathComponent("certs"))
        let (_, key) = try ca.issue(["localhost"], as: "localhost")
        XCTAssertEqual(chmod(key, 0o600), 0)
        XCTAssertEqual(chmod(dir.appendingPathComponent("certs").path, 0o700), 0, "only root may even look in")
        let tlsPort = try freePort()
        try writeFile(dir, "config.yaml", """
            server:
              listen: ["127.0.0.1:\(port)", {address: "127.0.0.1:\(tlsPort)", tls: true}]
              access_log: {to: off}
              workers: 2
              user: nobody
            tls: {cert: certs/localhost.crt, key: certs/localhost.key}
            hosts:
              - names: [localhost]
                routes:
                  - {path: /, respond: {body: one}}
            """)
        let process = try start(workers: 2, servingAs: nil)
        let options = TLSClient.Options(serverName: "localhost", trusting: ca.certificate)
        XCTAssertEqual(try TLSClient.get(port: tlsPort, "/", options)?.text, "one")
        let before = Set(children(of: process.pid))
        // A renewed certificate, then a reload: new workers serve it.
        try ca.issue(["localhost"], as: "localhost")
        XCTAssertEqual(chmod(key, 0o600), 0)
        let renewed = try XCTUnwrap(NIOSSLCertificate.fromPEMFile(dir.appendingPathComponent("certs/localhost.crt").path).first)
        process.signal(SIGHUP)
        try waitUntil("the workers replaced") { before.isDisjoint(with: children(of: process.pid)) && children(of: process.pid).count == 2 }
        try waitUntil("the renewed certificate served") {
            (try? TLSClient(port: tlsPort, options).peerCertificate()) == renewed
        }
        XCTAssertEqual(try TLSClient.get(port: tlsPort, "/", options)?.text, "one")
    }

    /// A server started as root must be told whom to serve as; `user: root` says so on purpose.
    func testRootServesOnlyWhenAskedTo() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root")
        let binary = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"] ?? "")
        try writeConfig()
        let refused = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: binary, servingAs: nil)
        XCTAssertEqual(refused.waitForExit(), 1)
        XCTAssertTrue(refused.log.contains("running as root and the configuration names no user to serve as"), refused.log)
        XCTAssertNil(answers())

        try writeConfig(server: "  user: root")
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: binary, servingAs: nil)
        served = process
        try waitUntil("served as root") { answers() == "one" }
        XCTAssertTrue(children(of: process.pid).isEmpty, "no supervisor is needed to stay root")
    }

    /// After a reload was refused, the file on disk is not what the supervisor serves: a worker
    /// started then (a respawn, a recycle) serves the configuration the supervisor validated, not
    /// the refused file. A worker killed after it served is replaced at once: only workers that die
    /// before serving count as a crash loop.
    func testWorkersStartedAfterARefusedReloadServeTheValidatedFile() throws {
        try writeConfig(server: "  workers: 2")
        let process = try start(workers: 2)
        try writeFile(dir, "config.yaml", "hosts: [{names: [localhost], routes: [{path: /, respond: {body: [broken}}]}]\n")
        process.signal(SIGHUP)
        try process.waitForLog("reload refused")
        let victim = try XCTUnwrap(children(of: process.pid).first)
        kill(victim, SIGKILL)
        try process.waitForLog("worker \(victim) was killed by signal 9")
        try waitUntil("a replacement serving") {
            let workers = children(of: process.pid)
            return workers.count == 2 && !workers.contains(victim) && (0..<10).allSatisfy { _ in answers() == "one" }
        }
        XCTAssertFalse(process.log.contains("exited with status 1"), process.log)
        XCTAssertFalse(process.log.contains("keeps dying"), process.log)
    }
}
