import Foundation
import PagiTestSupport
import XCTest

/// `listen: unix:/path` (docs/operations.md, *Unix sockets*): served with its `mode`, a stale
/// socket file replaced, one a live server holds or a file that is not a socket refused, and the
/// file removed on exit. Requests go through curl's `--unix-socket`.
final class UnixSocketTests: XCTestCase {
    private var dir: URL!
    private var served: [ServedProcess] = []

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: ServedProcess.binary.path), "pagi-serve not built")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is not installed")
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        for process in served { process.kill() }
        try? FileManager.default.removeItem(at: dir)
    }

    private var socketPath: String { dir.appendingPathComponent("srv.sock").path }

    private func writeConfig(port: Int, server: String = "", socket: String = "") throws {
        try writeFile(dir, "config.yaml", """
            server:
              listen: ["127.0.0.1:\(port)", {address: "unix:srv.sock", mode: "0660"\(socket)}]
              access_log: {to: off}
            \(server)
            hosts:
              - names: [localhost]
                routes:
                  - {path: /, respond: {body: "over the socket"}}
            """)
    }

    private func start(binary: URL = ServedProcess.binary) throws -> ServedProcess {
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: binary)
        served.append(process)
        return process
    }

    /// The body curl gets through the unix socket, or nil; curl runs as `user` when given (through
    /// setpriv, as root).
    private func viaSocket(as user: passwd? = nil) throws -> String? {
        let curl = Process()
        let arguments = ["-sf", "--max-time", "5", "--unix-socket", socketPath, "http://localhost/"]
        if let user {
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            curl.arguments = ["--reuid=\(user.pw_uid)", "--regid=\(user.pw_gid)", "--clear-groups", "--", "/usr/bin/curl"] + arguments
        } else {
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = arguments
        }
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        let body = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        return curl.terminationStatus == 0 ? String(decoding: body, as: UTF8.self) : nil
    }

    private func isSocket(mode expected: mode_t) -> Bool {
        var info = stat()
        return lstat(socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK && info.st_mode & 0o777 == expected
    }

    func testServesOnAUnixSocketWithItsModeAndRemovesItOnExit() throws {
        try writeConfig(port: try freePort())
        let process = try start()
        try process.waitForLog("listening on unix:\(socketPath)")
        XCTAssertEqual(try viaSocket(), "over the socket")
        XCTAssertTrue(isSocket(mode: 0o660))
        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketPath), "removed on exit")
    }

    func testAStaleSocketIsReplacedWhileALiveOneOrAnotherFileIsRefused() throws {
        // A socket file left behind by a server that is gone: nobody answers on it.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(socketPath.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(stale)
        XCTAssertTrue(FileManager.default.fileExists(atPath: socketPath))

        try writeConfig(port: try freePort())
        let first = try start()
        try first.waitForLog("listening on unix:")
        XCTAssertEqual(try viaSocket(), "over the socket")

        try writeConfig(port: try freePort())
        let second = try start()
        XCTAssertEqual(second.waitForExit(), 1)
        XCTAssertTrue(second.log.contains("another server is listening on it"), second.log)
        XCTAssertEqual(try viaSocket(), "over the socket", "the first server keeps its socket")

        first.signal(SIGTERM)
        XCTAssertEqual(first.waitForExit(), 0)
        try writeFile(dir, "srv.sock", "not a socket")
        let third = try start()
        XCTAssertEqual(third.waitForExit(), 1)
        XCTAssertTrue(third.log.contains("exists and is not a socket"), third.log)
        XCTAssertEqual(try String(contentsOfFile: socketPath, encoding: .utf8), "not a socket", "never deleted")
    }

    func testWorkersShareAUnixSocket() throws {
        guard let release = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"] else {
            throw XCTSkip("PAGI_RELEASE_BINARY names no release build of pagi-serve (scripts/test sets it)")
        }
        try writeConfig(port: try freePort(), server: "  workers: 2")
        let process = try start(binary: URL(fileURLWithPath: release))
        try process.waitForLog("listening on unix:\(socketPath)")
        let deadline = Date().addingTimeInterval(10)
        var answers = 0
        while answers < 20 && Date() < deadline {
            if try viaSocket() == "over the socket" { answers += 1 } else { Thread.sleep(forTimeInterval: 0.05) }
        }
        XCTAssertEqual(answers, 20)
        XCTAssertTrue(isSocket(mode: 0o660))
        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketPath), "removed by the supervisor on exit")
    }

    /// `owner: user:group` gives the socket file to a front proxy's user, which with `mode: "0660"`
    /// may then connect while others may not; applied by a single server and by a supervisor alike.
    func testASocketGivenToAnOwnerAdmitsItAlone() throws {
        try XCTSkipUnless(geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                          "needs root and setpriv to connect as another user")
        guard let nobody = getpwnam("nobody")?.pointee else { throw XCTSkip("this system has no user 'nobody'") }
        XCTAssertEqual(chmod(dir.path, 0o755), 0)
        let release = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"]
        for server in ["", "  workers: 2"] where server.isEmpty || release != nil {
            try writeConfig(port: try freePort(), server: server)
            var process = try start(binary: server.isEmpty ? ServedProcess.binary : URL(fileURLWithPath: release ?? ""))
            try process.waitForLog("listening on unix:\(socketPath)")
            XCTAssertNil(try viaSocket(as: nobody), "a root-owned 0660 socket refuses others")
            process.signal(SIGTERM)
            XCTAssertEqual(process.waitForExit(), 0)

            try writeConfig(port: try freePort(), server: server, socket: ", owner: \"nobody:\(nobody.pw_gid)\"")
            process = try start(binary: server.isEmpty ? ServedProcess.binary : URL(fileURLWithPath: release ?? ""))
            try process.waitForLog("listening on unix:\(socketPath)")
            var info = stat()
            XCTAssertEqual(lstat(socketPath, &info), 0)
            XCTAssertEqual([info.st_uid, info.st_gid], [nobody.pw_uid, nobody.pw_gid], server)
            XCTAssertEqual(try viaSocket(as: nobody), "over the socket", server)
            process.signal(SIGTERM)
            XCTAssertEqual(process.waitForExit(), 0)
        }
    }
}
