import Foundation
import PagiTestSupport
import XCTest

/// systemd socket activation (docs/operations.md, *Socket activation*): a listening socket passed at
/// descriptor 3 with `LISTEN_FDS`/`LISTEN_PID` is served in place of binding one, and a socket the
/// configuration does not name is refused. A small Python launcher plays systemd: it binds the
/// socket, puts it at descriptor 3 and execs pagi-serve with the variables set for its own pid.
final class SocketActivationTests: XCTestCase {
    private var dir: URL!
    private var served: ServedProcess?

    private static let launcher = """
        import os, socket, sys
        binary, port, arguments = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        os.dup2(listener.fileno(), 3)
        os.set_inheritable(3, True)
        os.execve(binary, [binary] + arguments, dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid())))
        """

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: ServedProcess.binary.path), "pagi-serve not built")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 is not installed")
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        served?.kill()
        try? FileManager.default.removeItem(at: dir)
    }

    /// pagi-serve (`binary`) started by the launcher with a socket on `passed`; the file listens on `configured`.
    private func start(passed: Int, configured: Int, server: String = "", binary: URL = ServedProcess.binary) throws -> ServedProcess {
        try writeFile(dir, "config.yaml", """
            server:
              listen: ["127.0.0.1:\(configured)"]
              access_log: {to: off}
            \(server)
            hosts:
              - names: [localhost]
                routes:
                  - {path: /, respond: {body: activated}}
            """)
        let process = try ServedProcess(arguments: ["-c", Self.launcher, binary.path, String(passed), "config.yaml"],
                                        directory: dir, binary: URL(fileURLWithPath: "/usr/bin/python3"))
        served = process
        return process
    }

    func testThePassedSocketIsServedInsteadOfBindingOne() throws {
        let port = try freePort()
        let process = try start(passed: port, configured: port)
        try process.waitForLog("listening on http://127.0.0.1:\(port) (socket activation)")
        XCTAssertEqual(RawClient.get(port: port, "/")?.text, "activated")
        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(), 0)
    }

    func testWorkersServeThePassedSocket() throws {
        guard let release = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"] else {
            throw XCTSkip("PAGI_RELEASE_BINARY names no release build of pagi-serve (scripts/test sets it)")
        }
        let port = try freePort()
        let process = try start(passed: port, configured: port, server: "  workers: 2", binary: URL(fileURLWithPath: release))
        try process.waitForLog("worker")
        let deadline = Date().addingTimeInterval(10)
        while RawClient.get(port: port, "/")?.text != "activated" && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        for _ in 0..<20 { XCTAssertEqual(RawClient.get(port: port, "/")?.text, "activated") }
        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(), 0)
    }

    func testASocketTheConfigurationDoesNotNameIsRefused() throws {
        let (passed, configured) = (try freePort(), try freePort())
        let process = try start(passed: passed, configured: configured)
        XCTAssertEqual(process.waitForExit(), 1)
        XCTAssertTrue(process.log.contains("socket activation passed 127.0.0.1:\(passed), which the configuration does not listen on"),
                      process.log)
    }
}
