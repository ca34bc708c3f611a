import PagiConfig
import XCTest
@testable import PagiCore

private typealias F = RoutingFixture

/// Routing's `body_json` conditions and the handler share one parse of the request body
/// (`RequestContext.parsedJSONBody`), and a body that no condition asks about is not parsed.
final class BodyParsedOnceTests: XCTestCase {
    private func compileRoutes() throws -> RoutingTable {
        try F.compile([
            F.route("/orders", line: 1, body: [("$.kind", .string("rush"))]),
            F.route("/", line: 2),
            F.route("/plain", line: 3),
        ])
    }

    func testRoutingKeepsTheBodyItParsedAndParsesOnlyWhenAConditionAsks() throws {
        let table = try compileRoutes()

        // Answered by the route with the `body_json` condition: the handler finds the body parsed.
        var matched = F.request("POST", "/orders", body: #"{"kind": "rush", "items": [1, 2]}"#)
        let answer = table.respond(to: &matched)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.text, "/orders")
        XCTAssertEqual(matched.context.parsedJSONBody, .json(.object([
            (key: "kind", value: .string("rush")), (key: "items", value: .array([.integer(1), .integer(2)])),
        ])))

        // The condition read a body that is not JSON and the request fell through to `/`: the
        // refusal is kept as well.
        var fellThrough = F.request("POST", "/orders", body: "kind=rush")
        XCTAssertEqual(table.respond(to: &fellThrough).text, "/")
        XCTAssertEqual(fellThrough.context.parsedJSONBody, .notJSON)

        // No candidate route has a `body_json` condition: the body is left alone.
        var plain = F.request("POST", "/plain", body: #"{"kind": "rush"}"#)
        XCTAssertEqual(table.respond(to: &plain).text, "/plain")
        XCTAssertNil(plain.context.parsedJSONBody)
    }

    /// The other way round: a parse kept before routing is what `body_json` conditions read.
    func testRoutingReadsABodyParsedBefore() throws {
        let table = try compileRoutes()
        var request = F.request("POST", "/orders", body: "not json")
        request.context.parsedJSONBody = .json(.object([(key: "kind", value: .string("rush"))]))
        XCTAssertEqual(table.respond(to: &request).text, "/orders", "the kept parse, not the body, was matched")
    }
}
