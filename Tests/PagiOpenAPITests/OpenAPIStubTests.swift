import Foundation
import PagiBuiltins
import PagiConfig
import PagiTestSupport
import XCTest

/// `openapi: {spec, validate}` end to end: documented examples, examples built from schemas,
/// `Prefer`, 404/405 under the mount point, and RFC 9457 problems for requests that break the spec.
final class OpenAPIStubTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "api/users.yaml", OpenAPIFixtures.usersSpec)
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [localhost]
                routes:
                  - path: /api/
                    openapi: {spec: api/users.yaml, validate: true}
                  - path: /loose/
                    openapi: {spec: api/users.yaml}
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server?.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func get(_ path: String, headers: [String: String] = [:], method: String = "GET") throws -> RawResponse {
        try XCTUnwrap(RawClient.get(port: server.port, path, headers: headers, method: method))
    }

    private func post(_ path: String, json body: String) throws -> RawResponse {
        let client = try RawClient(port: server.port)
        client.send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return try XCTUnwrap(client.readResponse())
    }

    private func json(_ response: RawResponse) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], response.text)
    }

    func testDocumentedExampleIsTheDefaultAnswer() throws {
        let list = try get("/api/users?limit=10")
        XCTAssertEqual(list.status, 200)
        XCTAssertEqual(list.header("Content-Type"), "application/json")
        XCTAssertEqual(list.text, #"[{"id":1,"name":"Ada"}]"#)

        let user = try get("/api/users/7")
        XCTAssertEqual(user.status, 200)
        XCTAssertEqual(user.text, #"{"id":1,"name":"Ada"}"#, "the first named example")
        XCTAssertNil(user.header("Preference-Applied"))

        let me = try get("/api/users/me")
        XCTAssertEqual(me.status, 200, "a concrete path wins over /users/{id}")
        XCTAssertEqual(me.header("Content-Type"), "text/plain")
        XCTAssertEqual(me.text, "it is you")
    }

    func testPreferPicksAnotherDocumentedResponseOrExample() throws {
        let grace = try get("/api/users/7", headers: ["Prefer": "example=grace"])
        XCTAssertEqual(grace.status, 200)
        XCTAssertEqual(grace.text, #"{"id":2,"name":"Grace"}"#)
        XCTAssertEqual(grace.header("Preference-Applied"), #"example="grace""#)

        let missing = try get("/api/users/7", headers: ["Prefer": "code=404"])
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(missing.text, #"{"title":"gone","status":404}"#, "members in the document's order")
        XCTAssertEqual(missing.header("Preference-Applied"), "code=404")

        let both = try get("/api/users/7", headers: ["Prefer": #"code=404, example="gone""#])
        XCTAssertEqual(both.status, 404)
        XCTAssertEqual(both.header("Preference-Applied"), #"code=404, example="gone""#)

        let byExampleAlone = try get("/api/users/7", headers: ["Prefer": "example=gone"])
        XCTAssertEqual(byExampleAlone.status, 404, "an example name alone finds its response")

        let undocumented = try get("/api/users/7", headers: ["Prefer": "code=418"])
        XCTAssertEqual(undocumented.status, 200, "an undocumented code is a preference the stub cannot honour")
        XCTAssertNil(undocumented.header("Preference-Applied"))
    }

    func testExampleIsSynthesisedFromTheSchema() throws {
        let created = try post("/api/users", json: #"{"name": "Lin", "email": "lin@example.com"}"#)
        XCTAssertEqual(created.status, 201)
        XCTAssertEqual(created.header("Content-Type"), "application/json")
        XCTAssertEqual(created.text, #"{"id":1,"name":"string","email":"user@example.com","role":"admin","tags":["string"],"#
                                     + #""created":"2024-01-15T09:30:00Z"}"#, "properties in schema order, formats, enum, arrays of one")
    }

    func testUnknownPathIs404AndWrongMethodIs405() throws {
        let unknown = try get("/api/orders")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknown.header("Content-Type"), "application/problem+json")
        let wrongMethod = try get("/api/users/7", method: "DELETE")
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertEqual(wrongMethod.header("Allow"), "GET, HEAD")
        XCTAssertEqual(try get("/api/users/7", method: "HEAD").status, 200)
    }

    func testPathParameterOfTheWrongTypeIs400() throws {
        let response = try get("/api/users/abc")
        XCTAssertEqual(response.status, 400)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        let problem = try json(response)
        XCTAssertEqual(problem["status"] as? Int, 400)
        XCTAssertEqual(problem["operationId"] as? String, "getUser")
        XCTAssertEqual(problem["instance"] as? String, "/api/users/abc")
        XCTAssertEqual(problem["detail"] as? String, #"path parameter 'id': expected integer, got string "abc""#)
        let violations = try XCTUnwrap(problem["violations"] as? [[String: String]])
        XCTAssertEqual(violations, [["in": "path", "name": "id", "expected": "integer", "got": #"string "abc""#]])
    }

    func testMissingOrOutOfRangeQueryParameterIs400() throws {
        let missing = try json(try get("/api/users"))
        XCTAssertEqual(missing["detail"] as? String, "query parameter 'limit': expected required parameter, got missing")
        let tooBig = try get("/api/users?limit=500")
        XCTAssertEqual(tooBig.status, 400)
        XCTAssertEqual(try json(tooBig)["detail"] as? String, "query parameter 'limit': expected <= 100, got integer 500")
    }

    func testBodyThatBreaksTheSchemaIs400WithEveryViolation() throws {
        let response = try post("/api/users", json: #"{"name": "Lin", "age": "forty", "email": "nope"}"#)
        XCTAssertEqual(response.status, 400)
        let problem = try json(response)
        XCTAssertEqual(problem["detail"] as? String, #"body property '/age': expected integer, got string "forty" (and 1 more)"#)
        let violations = try XCTUnwrap(problem["violations"] as? [[String: String]])
        XCTAssertEqual(violations, [
            ["in": "body", "name": "/age", "expected": "integer", "got": #"string "forty""#],
            ["in": "body", "name": "/email", "expected": "a string in format 'email'", "got": #"string "nope""#],
        ])
        let missingName = try json(try post("/api/users", json: #"{"email": "lin@example.com"}"#))
        XCTAssertEqual(missingName["detail"] as? String, "body property '/name': expected required property, got missing")
        let notJSON = try json(try post("/api/users", json: "{name"))
        XCTAssertEqual(notJSON["detail"] as? String, "request body: expected JSON, got text that is not JSON")
    }

    func testValidRequestsPassAndValidationIsOptIn() throws {
        XCTAssertEqual(try post("/api/users", json: #"{"name": "Lin", "email": "lin@example.com", "age": 40}"#).status, 201,
                       "a required readOnly property (id) is not expected in requests")
        XCTAssertEqual(try get("/api/users?limit=1").status, 200)
        XCTAssertEqual(try get("/loose/users/abc").status, 200, "without validate: true the stub answers anything")
        XCTAssertEqual(try get("/loose/users").status, 200)
    }

    func testJSONDocumentsInVersion31AreServed() throws {
        try writeFile(dir, "api/tiny.json", """
            {"openapi": "3.1.0", "info": {"title": "Tiny", "version": "1"},
             "paths": {"/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "pong",
               "content": {"application/json": {"schema": {"type": "object", "required": ["ok"],
                 "properties": {"ok": {"type": "boolean"}, "at": {"type": "string", "format": "date"}}}}}}}}}}}
            """)
        let tiny = try TestServer(yaml: """
            hosts:
              - names: [localhost]
                routes:
                  - {path: /tiny/, openapi: {spec: api/tiny.json}}
            """, directory: dir)
        defer { tiny.stop() }
        let response = try XCTUnwrap(RawClient.get(port: tiny.port, "/tiny/ping"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, #"{"ok":true,"at":"2024-01-15"}"#)
    }

    func testSpecThatDoesNotParseIsAConfigErrorNamingTheFile() throws {
        try writeFile(dir, "api/broken.yaml", "openapi: 3.0.3\ninfo: {title: Broken, version: \"1\"}\npaths:\n  /a:\n    get:\n      responses: [not, a, map]\n")
        let path = dir.appendingPathComponent("broken-config.yaml").path
        try """
            hosts:
              - names: [localhost]
                routes:
                  - {path: /api/, openapi: {spec: api/broken.yaml}}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: path)
        XCTAssertThrowsError(try Builtins.compile(config)) { error in
            let message = (error as? ConfigError)?.description ?? "\(error)"
            XCTAssertTrue(message.contains(dir.appendingPathComponent("api/broken.yaml").path + ":6:"), message)
            XCTAssertTrue(message.contains("error: openapi spec 'broken.yaml'"), message)
        }
    }
}
