import Foundation
import PagiTestSupport
import XCTest

/// The `pagi-serve` executable: commands, output and exit codes (0 ok, 1 config errors, 2 usage).
final class CLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "site/index.html", "<h1>cli</h1>")
        try writeFile(dir, "good.yaml", """
            hosts:
              - names: [localhost, "*.example.org"]
                routes:
                  - path: /
                    static: site
                  - path: /users/{id}
                    methods: [GET]
                    static: site
                  - path: /users/{id}
                    methods: [POST]
                    headers: {X-Key: k}
                    static: site
            """)
        try writeFile(dir, "bad.yaml", """
            server:
              log_level: verbose
            hosts:
              - names: [localhost]
                routes:
                  - path: /
                    stattic: site
                  - path: /users/{id}
                    static: site
                  - path: /users/{name}
                    static: site
            """)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private var binary: URL { ServedProcess.binary }

    /// Runs the binary with `arguments`, as the user `user` when given (root's tests only, through setpriv).
    private func run(_ arguments: [String], as user: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        if let user {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            let group = getpwnam(user).map { String($0.pointee.pw_gid) } ?? user
            process.arguments = ["--reuid=\(user)", "--regid=\(group)", "--init-groups", "--", binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        process.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    func testCheckAcceptsAValidFile() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let result = try run(["check", "good.yaml"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("ok"), result.stdout)
    }

    /// `user` and `group` are looked up when the file is read, so a name that does not exist is a
    /// diagnostic at its position (docs/operations.md, *Privileges*).
    func testCheckReportsAUserOrGroupThatDoesNotExist() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        try writeFile(dir, "users.yaml", """
            server:
              user: no-such-user-here
            hosts:
              - {names: [localhost], routes: [{path: /, respond: {body: x}}]}
            """)
        try writeFile(dir, "groups.yaml", """
            server:
              user: nobody
              group: no-such-group-here
            hosts:
              - {names: [localhost], routes: [{path: /, respond: {body: x}}]}
            """)
        let users = try run(["check", "users.yaml"])
        XCTAssertEqual(users.status, 1)
        XCTAssertTrue(users.stderr.contains("users.yaml:2:9: error: no user 'no-such-user-here' on this system"), users.stderr)
        let groups = try run(["check", "groups.yaml"])
        XCTAssertEqual(groups.status, 1)
        XCTAssertTrue(groups.stderr.contains("groups.yaml:3:10: error: no group 'no-such-group-here' on this system"), groups.stderr)
    }

    /// Only root can switch users: a server started by anyone else refuses a `user` it is not.
    func testAUserOnlyRootCouldBecomeIsRefused() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        try XCTSkipUnless(geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                          "needs root and setpriv to start the server as another user")
        XCTAssertEqual(chmod(dir.path, 0o755), 0)
        try writeFile(dir, "root.yaml", """
            server:
              user: root
            hosts:
              - {names: [localhost], routes: [{path: /, respond: {body: x}}]}
            """)
        let result = try run(["root.yaml", "--listen", "127.0.0.1:0"], as: "nobody")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("root.yaml:2:9: cannot become user 'root': pagi-serve runs as 'nobody', and only root can switch users"),
                      result.stderr)
    }

    func testCheckReportsEveryErrorWithPositionsAndExits1() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let result = try run(["check", "bad.yaml"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("bad.yaml:2:14: error:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("bad.yaml:7:9: error: unknown key 'stattic'"), result.stderr)
        XCTAssertTrue(result.stderr.contains("did you mean 'static'?"), result.stderr)
        // The offending line follows, with the token underlined from its column.
        XCTAssertTrue(result.stderr.contains("did you mean 'static'?)\n  |\n7 |         stattic: site\n  |         ^~~~~~~\n"), result.stderr)
        XCTAssertTrue(result.stderr.contains("bad.yaml:10:"), "route conflicts are found in the same run: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("conflicts with '/users/{id}' at bad.yaml:8"), result.stderr)
    }

    func testEveryHandlerAndMiddlewareIsServedWithoutWarnings() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        try writeFile(dir, "later.yaml", """
            server:
              workers: 2
            hosts:
              - names: [localhost]
                middleware: [{cors: {origins: ["https://a.example"]}}]
                routes:
                  - path: /api/hello
                    proxy: {to: ["http://127.0.0.1:9"]}
                  - path: /
                    static: site
                  - {path: /feed, sse: {subscribe: news}}
            """)
        let check = try run(["check", "later.yaml"])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertFalse(check.stderr.contains("'workers' is not supported"), "workers are served: \(check.stderr)")
        XCTAssertTrue(check.stderr.contains("later.yaml:2:12: warning: with pubsub: memory, channels are per worker process"),
                      check.stderr)
        XCTAssertFalse(check.stderr.contains("middleware"), "every middleware is implemented: \(check.stderr)")
        XCTAssertFalse(check.stderr.contains("proxy"), "proxy is served: \(check.stderr)")

        let server = try TestServer(yaml: try String(contentsOf: dir.appendingPathComponent("later.yaml"), encoding: .utf8), directory: dir)
        defer { server.stop() }
        // Nothing listens on the discard port: no upstream answers.
        XCTAssertEqual(RawClient.get(port: server.port, "/api/hello")?.status, 502)
        XCTAssertEqual(RawClient.get(port: server.port, "/")?.text, "<h1>cli</h1>")
    }

    func testUsageErrorsExit2() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        XCTAssertEqual(try run(["check", "good.yaml", "--no-such-flag"]).status, 2)
        XCTAssertEqual(try run(["explain", "good.yaml"]).status, 2)
        let help = try run(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("explain"))
    }

    func testRoutesListsTheTable() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let result = try run(["routes", "good.yaml"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("/users/{id}"), result.stdout)
        XCTAssertTrue(result.stdout.contains("static"), result.stdout)
        XCTAssertTrue(result.stdout.contains("good.yaml:6"), result.stdout)
    }

    func testRoutesListsTheOperationsOfAnOpenAPIMount() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        try writeFile(dir, "api/users.yaml", OpenAPIFixtures.usersSpec)
        try writeFile(dir, "api.yaml", """
            hosts:
              - names: [localhost]
                routes:
                  - path: /api/
                    openapi: {spec: api/users.yaml, validate: true}
            """)
        let result = try run(["routes", "api.yaml"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.stderr.contains("not supported yet"), result.stderr)
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertTrue(lines.contains("localhost (default) /api/ * - openapi - api.yaml:4"), result.stdout)
        XCTAssertTrue(lines.contains("localhost (default) /api/users/{id} GET - openapi: operationId=getUser -"), result.stdout)
        XCTAssertTrue(lines.contains("localhost (default) /api/users POST - openapi: operationId=createUser -"), result.stdout)
        XCTAssertTrue(lines.contains("localhost (default) /api/users/me GET - openapi: operationId=currentUser -"), result.stdout)

        try writeFile(dir, "api/users.yaml", "openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a: [1, 2\n")
        let broken = try run(["check", "api.yaml"])
        XCTAssertEqual(broken.status, 1)
        XCTAssertTrue(broken.stderr.contains("api/users.yaml:5:1: error: openapi spec 'users.yaml': not valid YAML or JSON"), broken.stderr)
    }

    func testExplainShowsTheChosenRouteAndNearMisses() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let result = try run(["explain", "good.yaml", "POST", "http://www.example.org/users/42"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("*.example.org"), result.stdout)
        XCTAssertTrue(result.stdout.contains("id"), result.stdout)
        XCTAssertTrue(result.stdout.contains("42"), result.stdout)
        XCTAssertTrue(result.stdout.lowercased().contains("x-key"), "the POST route's unmet header is explained: \(result.stdout)")
    }

    func testLogLevelFiltersTheServerLog() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let port = try freePort()
        for (level, expectInfo) in [("info", true), ("warn", false)] {
            let process = try ServedProcess(arguments: ["static", "site", "--listen", "127.0.0.1:\(port)", "--log-level", level],
                                            directory: dir)
            var answered = false
            for _ in 0..<100 where !answered {
                answered = RawClient.get(port: port, "/")?.status == 200
                if !answered { Thread.sleep(forTimeInterval: 0.05) }
            }
            process.signal(SIGTERM)
            XCTAssertEqual(process.waitForExit(), 0)
            XCTAssertTrue(answered, level)
            XCTAssertEqual(process.log.contains("info: listening on http://127.0.0.1:\(port)"), expectInfo, "log_level \(level): \(process.log)")
        }
    }

    func testServeAndStaticCommandsServeAndStopGracefullyOnSIGTERM() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        for arguments in [["good.yaml", "--listen", "127.0.0.1:0"], ["static", "site", "--listen", "127.0.0.1:0"]] {
            let process = try ServedProcess(arguments: arguments, directory: dir)
            try process.waitForLog("listening on")
            let line = try XCTUnwrap(process.log.split(separator: "\n").first { $0.contains("listening on") })
            let bound = try XCTUnwrap(line.split(separator: ":").last.flatMap { Int($0.filter(\.isNumber)) }, String(line))
            XCTAssertEqual(RawClient.get(port: bound, "/")?.text, "<h1>cli</h1>", arguments.joined(separator: " "))
            process.signal(SIGTERM)
            XCTAssertEqual(process.waitForExit(), 0, "SIGTERM is a clean exit")
        }
    }

    /// `server.backlog` is the listening socket's backlog (`ss` shows it as Send-Q of a listener).
    func testBacklogIsTheListeningSocketsBacklog() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/ss"), "ss (iproute2) is not installed")
        let port = try freePort()
        try writeFile(dir, "backlog.yaml", """
            server: {listen: ["127.0.0.1:\(port)"], backlog: 77, access_log: {to: off}}
            hosts:
              - {names: [localhost], routes: [{path: /, respond: {body: x}}]}
            """)
        let process = try ServedProcess(arguments: ["backlog.yaml"], directory: dir)
        defer { process.kill() }
        try process.waitForLog("listening on")
        let ss = Process()
        ss.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        ss.arguments = ["-ltnH", "sport = :\(port)"]
        let out = Pipe()
        ss.standardOutput = out
        try ss.run()
        let line = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ss.waitUntilExit()
        // State, Recv-Q, Send-Q (the backlog), local address, peer.
        XCTAssertEqual(line.split(whereSeparator: \.isWhitespace).dropFirst(2).first, "77", line)
    }

    /// A one-route server started through `sh -c "ulimit LIMIT && exec pagi-serve …"`, listening.
    private func serveUnderDescriptorLimit(_ limit: String) throws -> (process: ServedProcess, port: Int) {
        let port = try freePort()
        try writeFile(dir, "limited.yaml", """
            server: {listen: ["127.0.0.1:\(port)"], threads: 1, access_log: {to: off}}
            hosts:
              - {names: [localhost], routes: [{path: /, respond: {body: x}}]}
            """)
        let process = try ServedProcess(arguments: ["-c", "ulimit \(limit) && exec \"$0\" \"$@\"", binary.path, "limited.yaml"],
                                        directory: dir, binary: URL(fileURLWithPath: "/bin/sh"))
        try process.waitForLog("listening on")
        return (process, port)
    }

    /// Listening sockets are kept at descriptors of 100 and above (clear of those a started
    /// process receives sockets at); under a lower descriptor limit they go wherever they fit.
    func testServesUnderADescriptorLimitBelow100() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let (process, port) = try serveUnderDescriptorLimit("-n 64")
        defer { process.kill() }
        XCTAssertEqual(RawClient.get(port: port, "/")?.text, "x")
    }

    /// The soft limit on open descriptors is raised to the hard one at start (docs/tuning.md).
    func testTheSoftDescriptorLimitIsRaisedToTheHardOne() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        let (process, _) = try serveUnderDescriptorLimit("-Sn 200")
        defer { process.kill() }
        let limits = try String(contentsOfFile: "/proc/\(process.pid)/limits", encoding: .utf8)
        let line = try XCTUnwrap(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let values = line.split(whereSeparator: \.isWhitespace).dropFirst(3).prefix(2)
        XCTAssertEqual(values.first, values.last, String(line))
        XCTAssertNotEqual(values.first, "200", String(line))
    }

    func testCheckReportsWhatEachOpenAPIMountLoaded() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        try writeFile(dir, "api/users.yaml", OpenAPIFixtures.usersSpec)
        try writeFile(dir, "api.yaml", "hosts:\n  - names: [localhost]\n    routes:\n      - {path: /api/, openapi: {spec: api/users.yaml}}\n")
        let result = try run(["check", "api.yaml"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("  openapi /api/: users.yaml, 4 operations, loaded in "), result.stdout)
        XCTAssertTrue(result.stdout.hasSuffix(" ms\n"), result.stdout)
    }

    func testStaticFollowsSymlinksOutOfTheDirectoryOnlyWhenTold() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: binary.path), "pagi-serve not built")
        // As in Debian's documentation trees: `_static/*.js` link into a shared directory.
        try writeFile(dir, "javascript/jquery.js", "var jQuery;")
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("site/jquery.js").path,
                                                   withDestinationPath: dir.appendingPathComponent("javascript/jquery.js").path)
        for (flags, expected) in [([String](), 404), (["--follow-symlinks", "never"], 404), (["--follow-symlinks", "always"], 200)] {
            let port = try freePort()
            let process = Process()
            process.executableURL = binary
            process.arguments = ["static", "site", "--listen", "127.0.0.1:\(port)", "--user", ServedProcess.currentUser] + flags
            process.currentDirectoryURL = dir
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            defer {
                process.terminate()
                process.waitUntilExit()
            }
            var index: RawResponse?
            for _ in 0..<100 where index == nil {
                index = RawClient.get(port: port, "/")
                if index == nil { Thread.sleep(forTimeInterval: 0.05) }
            }
            XCTAssertEqual(index?.status, 200, flags.joined(separator: " "))
            XCTAssertEqual(RawClient.get(port: port, "/jquery.js")?.status, expected, flags.joined(separator: " "))
        }
        XCTAssertNotEqual(try run(["static", "site", "--follow-symlinks", "sometimes"]).status, 0)
    }
}
