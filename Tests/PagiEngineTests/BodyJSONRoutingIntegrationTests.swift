import Foundation
import PagiTestSupport
import XCTest

/// `body_json` route conditions (docs/configuration.md §8) over sockets: stubs sharing one path are told apart
/// by values inside the JSON request body (dotted paths and array indexes).
final class BodyJSONRoutingIntegrationTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        server = try TestServer(yaml: """
            server:
              access_log: {to: off}
            hosts:
              - names: [localhost]
                routes:
                  - path: /api/login
                    methods: [POST]
                    respond: {status: 401, json: {error: unknown user}}
                  - path: /api/login
                    methods: [POST]
                    body_json: {"$.user.role": admin}
                    respond: {json: {token: admin-token, role: "{{json.user.role}}"}}
                  - path: /api/login
                    methods: [POST]
                    body_json: {"$.user.role": guest, "$.user.verified": true}
                    respond: {json: {token: guest-token}}
                  - path: /api/orders
                    body_json: {"$.items[1].sku": B-2, "$.items[1].quantity": 3}
                    respond: {body: second item matches}
                  - path: /api/orders
                    body_json: {"$.items[0].sku": A-1}
                    respond: {body: first item matches}
                  - path: /api/orders
                    respond: {status: 422, body: no order matched}
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func post(_ path: String, _ body: String) throws -> RawResponse {
        let client = try RawClient(port: server.port)
        client.send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        return try XCTUnwrap(client.readResponse())
    }

    func testDottedPathsPickTheStub() throws {
        let admin = try post("/api/login", #"{"user": {"name": "ada", "role": "admin"}}"#)
        XCTAssertEqual(admin.status, 200)
        XCTAssertEqual(admin.text, #"{"token":"admin-token","role":"admin"}"#)

        let guest = try post("/api/login", #"{"user": {"role": "guest", "verified": true}}"#)
        XCTAssertEqual(guest.text, #"{"token":"guest-token"}"#)

        // Every condition must hold: an unverified guest falls through to the unconditioned stub.
        let unverified = try post("/api/login", #"{"user": {"role": "guest", "verified": false}}"#)
        XCTAssertEqual(unverified.status, 401)
        XCTAssertEqual(try post("/api/login", #"{"user": {"role": "root"}}"#).status, 401)
    }

    func testTypesMustMatchAsWritten() throws {
        // `true` in YAML is a boolean: the JSON string "true" is something else.
        XCTAssertEqual(try post("/api/login", #"{"user": {"role": "guest", "verified": "true"}}"#).status, 401)
        // `3` matches the JSON numbers 3 and 3.0, but not the string "3".
        XCTAssertEqual(try post("/api/orders", #"{"items": [{"sku": "x"}, {"sku": "B-2", "quantity": 3.0}]}"#).text,
                       "second item matches")
        XCTAssertEqual(try post("/api/orders", #"{"items": [{"sku": "x"}, {"sku": "B-2", "quantity": "3"}]}"#).status, 422)
    }

    func testArrayIndexesPickTheStubAndMoreConditionsGoFirst() throws {
        XCTAssertEqual(try post("/api/orders", #"{"items": [{"sku": "A-1"}]}"#).text, "first item matches")
        // Both stubs match; the one with more conditions wins, whatever the order in the file.
        XCTAssertEqual(try post("/api/orders", #"{"items": [{"sku": "A-1"}, {"sku": "B-2", "quantity": 3}]}"#).text,
                       "second item matches")
        XCTAssertEqual(try post("/api/orders", #"{"items": []}"#).status, 422, "an index past the end matches nothing")
    }

    func testBodiesThatAreNotJSONMatchNoCondition() throws {
        XCTAssertEqual(try post("/api/login", "role=admin").status, 401)
        XCTAssertEqual(try post("/api/login", "").status, 401)
        XCTAssertEqual(try post("/api/orders", "{\"items\": [").status, 422)
    }
}
