import Foundation
import PagiTestSupport
import XCTest

/// The serving process driven by real signals (docs/operations.md): SIGHUP and `--watch` reload
/// without dropping connections, an invalid file keeps the old config, `pid_file`, and the
/// graceful and the forced stop.
final class ReloadAndSignalTests: XCTestCase {
    private var dir: URL!
    private var served: ServedProcess?

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: ServedProcess.binary.path), "pagi-serve not built")
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        served?.kill()
        try? FileManager.default.removeItem(at: dir)
    }

    /// Writes `config.yaml` with these routes (and server settings), listening on `port`.
    private func writeConfig(port: Int, extraListen: Int? = nil, server: String = "", routes: String) throws {
        let listen = ["127.0.0.1:\(port)"] + (extraListen.map { ["127.0.0.1:\($0)"] } ?? [])
        try writeFile(dir, "config.yaml", """
            server:
              listen: [\(listen.map { "\"\($0)\"" }.joined(separator: ", "))]
              access_log: {to: off}
            \(server)
            hosts:
              - names: [localhost]
                routes:
            \(routes)
            """)
    }

    private func start(_ arguments: [String] = ["config.yaml"]) throws -> ServedProcess {
        let process = try ServedProcess(arguments: arguments, directory: dir)
        served = process
        try process.waitForLog("listening on")
        return process
    }

    func testSIGHUPAppliesAValidConfigToTheNextRequestOfAnOpenConnection() throws {
        let port = try freePort()
        try writeConfig(port: port, routes: "      - {path: /, respond: {body: one}}")
        let process = try start()
        let client = try RawClient(port: port)
        client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "one")

        try writeConfig(port: port, routes: "      - {path: /, respond: {body: two}}")
        process.signal(SIGHUP)
        try process.waitForLog("configuration reloaded")
        client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "two", "the same keep-alive connection, the new table")
    }

    func testAnInvalidFileIsRefusedWithEveryDiagnosticAndTheOldConfigKeepsServing() throws {
        let port = try freePort()
        try writeConfig(port: port, routes: "      - {path: /, respond: {body: one}}")
        let process = try start()
        try writeConfig(port: port, server: "  log_level: loud", routes: "      - {path: /, respnd: {body: two}}")
        process.signal(SIGHUP)
        try process.waitForLog("reload refused")
        let log = process.log
        XCTAssertTrue(log.contains("config.yaml:4:14: error:"), "the bad log_level, with its position: \(log)")
        XCTAssertTrue(log.contains("unknown key 'respnd'"), log)
        XCTAssertEqual(RawClient.get(port: port, "/")?.text, "one")
    }

    func testAReloadOpensAddedListenersAndDrainsDroppedOnes() throws {
        let (first, second) = (try freePort(), try freePort())
        try writeConfig(port: first, routes: "      - {path: /, respond: {body: hi}}")
        let process = try start()
        try writeConfig(port: first, extraListen: second, routes: "      - {path: /, respond: {body: hi}}")
        process.signal(SIGHUP)
        try process.waitForLog("configuration reloaded")
        XCTAssertEqual(RawClient.get(port: second, "/")?.text, "hi", "the added listener serves")

        try writeConfig(port: second, routes: "      - {path: /, respond: {body: hi}}")
        process.signal(SIGHUP)
        try process.waitForLog("stopped listening on http://127.0.0.1:\(first)")
        XCTAssertNil(RawClient.get(port: first, "/"), "the dropped listener no longer accepts")
        XCTAssertEqual(RawClient.get(port: second, "/")?.text, "hi")
    }

    func testWatchReloadsWhenAnIncludedFileChanges() throws {
        let port = try freePort()
        try writeFile(dir, "routes.yaml", "hosts:\n  - names: [other]\n    routes:\n      - {path: /, respond: {body: before}}\n")
        try writeConfig(port: port, server: "include: [routes.yaml]", routes: "      - {path: /, respond: {body: main}}")
        let process = try start(["config.yaml", "--watch"])
        XCTAssertEqual(RawClient.get(port: port, "/", headers: ["Host": "other"])?.text, "before")
        try writeFile(dir, "routes.yaml", "hosts:\n  - names: [other]\n    routes:\n      - {path: /, respond: {body: after}}\n")
        try process.waitForLog("configuration reloaded")
        XCTAssertTrue(process.log.contains("routes.yaml changed"), process.log)
        XCTAssertEqual(RawClient.get(port: port, "/", headers: ["Host": "other"])?.text, "after")
    }

    func testAWebSocketOpenedBeforeAReloadStillGetsWhatIsPublishedAfterIt() throws {
        let port = try freePort()
        let routes = """
                  - {path: /chat, websocket: {subscribe: news}}
                  - {path: /publish, publish: news}
            """
        try writeConfig(port: port, routes: routes)
        let process = try start()
        let socket = try WebSocketClient(port: port, path: "/chat")
        XCTAssertEqual(socket.status, 101)
        try writeConfig(port: port, routes: routes + "\n      - {path: /new, respond: {body: new}}")
        process.signal(SIGHUP)
        try process.waitForLog("configuration reloaded")
        XCTAssertEqual(RawClient.get(port: port, "/new")?.text, "new")
        let publisher = try RawClient(port: port)
        publisher.send("POST /publish HTTP/1.1\r\nHost: localhost\r\nContent-Length: 16\r\n\r\nafter the reload")
        XCTAssertEqual(publisher.readResponse()?.status, 202)
        XCTAssertEqual(socket.readMessageFrame()?.text, "after the reload", "one channel broker across the reload")
    }

    func testPidFileIsWrittenRefusedToASecondServerAndRemovedOnExit() throws {
        let (port, other) = (try freePort(), try freePort())
        let pidPath = dir.appendingPathComponent("server.pid").path
        try writeConfig(port: port, server: "  pid_file: server.pid", routes: "      - {path: /, respond: {body: hi}}")
        let process = try start()
        XCTAssertEqual(try String(contentsOfFile: pidPath, encoding: .utf8), "\(process.pid)\n")

        let second = try ServedProcess(arguments: ["config.yaml", "--listen", "127.0.0.1:\(other)"], directory: dir)
        XCTAssertEqual(second.waitForExit(), 1)
        XCTAssertTrue(second.log.contains("held by another running pagi-serve (pid \(process.pid))"), second.log)
        XCTAssertEqual(try String(contentsOfFile: pidPath, encoding: .utf8), "\(process.pid)\n", "left to its owner")

        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pidPath))
    }

    func testSIGTERMLetsAnAnswerInFlightFinishAndASecondSignalExitsAtOnce() throws {
        let port = try freePort()
        try writeConfig(port: port, routes: """
                  - {path: /slow, respond: {body: done, delay: 1s}}
                  - {path: /stuck, respond: {body: never, delay: 60s}}
            """)
        let process = try start()
        let slow = try RawClient(port: port)
        slow.send("GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.2)
        process.signal(SIGTERM)
        XCTAssertEqual(slow.readResponse()?.text, "done", "an answer in flight is finished")
        XCTAssertEqual(process.waitForExit(), 0)

        let again = try start()
        let stuck = try RawClient(port: port)
        stuck.send("GET /stuck HTTP/1.1\r\nHost: localhost\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.2)
        again.signal(SIGTERM)
        try again.waitForLog("shutting down")
        let asked = Date()
        again.signal(SIGTERM)
        XCTAssertEqual(again.waitForExit(), 1, "a second signal does not wait for the drain")
        XCTAssertLessThan(Date().timeIntervalSince(asked), 5)
    }
}
