import Foundation
import PagiTestSupport
import XCTest

/// `pagi-serve record` (docs/proxy.md, *Record mode*): traffic through the recording proxy
/// becomes a stub configuration that `check` accepts and that, served, answers byte for byte as the
/// upstream did — ids turned into a parameter, queries into conditions, a changing answer into a
/// list, a long body into a file, and no cookie written down.
final class RecordTests: XCTestCase {
    private var dir: URL!
    private var processes: [ServedProcess] = []
    private var upstream: TestServer?

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: ServedProcess.binary.path), "pagi-serve not built")
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        for process in processes { process.kill() }
        upstream?.stop()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private let requests: [(method: String, path: String)] = [
        ("GET", "/api/users/1"), ("GET", "/api/users/2"), ("GET", "/api/search?q=shoes"), ("GET", "/api/search?q=hats"),
        ("GET", "/api/counter"), ("GET", "/api/counter"), ("GET", "/files/photo.bin"), ("POST", "/api/orders"),
        ("GET", "/api/braces"), ("GET", "/api/session"),
    ]

    /// `pagi-serve record` in front of `server`, listening on the port it returns.
    private func startRecorder(for server: TestServer) throws -> (port: Int, process: ServedProcess) {
        upstream = server
        let port = try freePort()
        let recorder = try ServedProcess(arguments: ["record", "--upstream", "http://127.0.0.1:\(server.port)", "--out", "stubs.yaml",
                                                     "--listen", "127.0.0.1:\(port)"], directory: dir)
        processes.append(recorder)
        try recorder.waitForLog("listening on http://127.0.0.1:\(port)")
        return (port, recorder)
    }

    /// stubs.yaml once it holds `count` exchanges (the recorder is then stopped).
    private func recordedStubs(_ count: Int, by recorder: ServedProcess) throws -> String {
        let stubs = dir.appendingPathComponent("stubs.yaml")
        let deadline = Date().addingTimeInterval(5)
        while !((try? String(contentsOf: stubs, encoding: .utf8))?.contains("\(count) exchanges") ?? false) {
            guard Date() < deadline else { throw ServedProcess.NotLogged(awaited: "\(count) exchanges in stubs.yaml", log: recorder.log) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        recorder.kill()
        return try String(contentsOf: stubs, encoding: .utf8)
    }

    /// stubs.yaml served; its port.
    private func serveStubs() throws -> Int {
        let port = try freePort()
        let stubbed = try ServedProcess(arguments: ["stubs.yaml", "--listen", "127.0.0.1:\(port)"], directory: dir)
        processes.append(stubbed)
        try stubbed.waitForLog("listening on http://127.0.0.1:\(port)")
        return port
    }

    func testARecordedSessionIsServedBackByteForByte() throws {
        try writeFile(dir, "upstream/files/photo.bin", deterministicBytes(count: 10_000))
        try writeFile(dir, "upstream/braces.txt", "{{not a template}}")
        let server = try TestServer(yaml: """
            hosts:
              - names: ["*"]
                routes:
                  - {path: "/api/users/{id}", respond: {json: {id: "{{path.id}}", name: "User {{path.id}}"}, headers: {X-Trace: abc, Cache-Control: no-store}}}
                  - {path: /api/search, respond: {body: "results for {{query.q}}"}}
                  - path: /api/counter
                    respond: [{body: first}, {status: 503, body: second}]
                  - {path: /files/, static: {root: upstream/files}}
                  - {path: /api/orders, methods: [POST], respond: {status: 201, json: {order: 9}, headers: {Location: /api/orders/9}}}
                  - {path: /api/braces, respond: {file: upstream/braces.txt}}
                  - {path: /api/session, respond: {body: welcome, headers: {Set-Cookie: "session=secret-value"}}}
            """, directory: dir)
        let (recordPort, recorder) = try startRecorder(for: server)
        let recorded = requests.map { RawClient.get(port: recordPort, $0.path, method: $0.method) }
        XCTAssertEqual(recorded.map { $0?.status }, [200, 200, 200, 200, 200, 503, 200, 201, 200, 200])
        let yaml = try recordedStubs(requests.count, by: recorder)
        XCTAssertFalse(yaml.contains("secret-value"), "cookies are never written down:\n\(yaml)")
        XCTAssertTrue(yaml.contains("\"/api/users/{id}\""), yaml)
        XCTAssertTrue(yaml.contains("query: {\"q\": \"shoes\"}"), yaml)
        XCTAssertTrue(yaml.contains("file: \"stubs-bodies/"), "the 10 KB body goes to a file:\n\(yaml)")

        let check = try ServedProcess.run(["check", "stubs.yaml"], in: dir)
        XCTAssertEqual(check.status, 0, check.output + "\n" + yaml)

        let servePort = try serveStubs()
        for (request, original) in zip(requests, recorded) {
            let replayed = RawClient.get(port: servePort, request.path, method: request.method)
            XCTAssertEqual(replayed?.status, original?.status, "\(request)")
            XCTAssertTrue(replayed?.body == original?.body, "\(request): \(replayed?.text ?? "-") ≠ \(original?.text ?? "-")")
            XCTAssertEqual(replayed?.header("Content-Type"), original?.header("Content-Type"), "\(request)")
        }
        XCTAssertEqual(RawClient.get(port: servePort, "/api/users/2")?.header("X-Trace"), "abc")
        XCTAssertEqual(RawClient.get(port: servePort, "/api/orders", method: "POST")?.header("Location"), "/api/orders/9")
        XCTAssertNil(RawClient.get(port: servePort, "/api/session")?.header("Set-Cookie"))
        // An id never recorded is answered by the parameter route, as the last one recorded.
        XCTAssertEqual(RawClient.get(port: servePort, "/api/users/77")?.body, recorded[1]?.body)
    }

    /// JSON requests to one path that got different answers are told apart by the fields of their
    /// bodies that differ (`body_json`), typed as they were sent; any other body gets the route
    /// without conditions.
    func testJSONRequestsToldApartByTheirBodyBecomeBodyConditions() throws {
        let server = try TestServer(yaml: """
            hosts:
              - names: ["*"]
                routes:
                  - {path: /login, methods: [POST], body_json: {"$.user": ada}, respond: {body: "welcome ada"}}
                  - {path: /login, methods: [POST], body_json: {"$.user": bob, "$.code": 7}, respond: {status: 403, body: "not bob"}}
                  - {path: /login, methods: [POST], respond: {status: 401, body: "who?"}}
            """, directory: dir)
        let (recordPort, recorder) = try startRecorder(for: server)
        func login(_ port: Int, _ json: String) -> RawResponse? {
            guard let client = try? RawClient(port: port) else { return nil }
            client.send("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n" + json)
            return client.readResponse()
        }
        let bodies = [#"{"user": "ada", "code": 1}"#, #"{"user": "bob", "code": 7}"#, #"{"user": "eve", "code": 7}"#]
        let recorded = bodies.map { login(recordPort, $0) }
        XCTAssertEqual(recorded.map { $0?.text }, ["welcome ada", "not bob", "who?"])
        let yaml = try recordedStubs(bodies.count, by: recorder)
        XCTAssertTrue(yaml.contains(#"body_json: {"$.code": 7, "$.user": "bob"}"#), yaml)
        XCTAssertEqual(try ServedProcess.run(["check", "stubs.yaml"], in: dir).status, 0, yaml)
        let servePort = try serveStubs()
        for (body, original) in zip(bodies, recorded) {
            let replayed = login(servePort, body)
            XCTAssertEqual(replayed?.status, original?.status, body)
            XCTAssertEqual(replayed?.text, original?.text, body)
        }
        // A code sent as a string is another value: not bob's route.
        XCTAssertEqual(login(servePort, #"{"user": "bob", "code": "7"}"#)?.status, 200, "the route without conditions answers in turn")
    }
}
