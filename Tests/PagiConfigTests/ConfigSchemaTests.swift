import XCTest
@testable import PagiConfig

/// `pagi-serve schema` (conformance/config-schema.py validates documents against it with Python's
/// jsonschema; these check how it is built).
final class ConfigSchemaTests: XCTestCase {
    func testEveryKeyTheLoaderTakesHasATypeInTheSchema() {
        XCTAssertEqual(ConfigSchema.sectionsWithoutTypes, [:])
    }

    func testSchemaNamesExactlyTheLoadersKeys() throws {
        let schema = ConfigSchema.document
        XCTAssertEqual(schema["$schema"], .string("https://json-schema.org/draft/2020-12/schema"))
        XCTAssertEqual(keys(schema["properties"]), ConfigBuilder.topLevelKeys)
        let definitions = schema["$defs"]
        XCTAssertEqual(keys(definitions?["server"]?["properties"]), ConfigBuilder.serverKeys)
        XCTAssertEqual(keys(definitions?["host"]?["properties"]), ConfigBuilder.hostKeys)
        XCTAssertEqual(keys(definitions?["route"]?["properties"]), ConfigBuilder.routeKeys + ConfigBuilder.handlerNames)
        guard case .list(let itemShapes)? = definitions?["middlewareList"]?["items"]?["anyOf"] else { return XCTFail("no middleware items") }
        XCTAssertEqual(keys(itemShapes.last?["properties"]), MiddlewareKind.allCases.map(\.rawValue))
    }

    func testJSONTextEscapesAndKeepsKeyOrder() {
        let value = ConfigValue.map([(key: "b", value: .string("quote \" back \\ line\n\u{1}")), (key: "a", value: .list([.int(1), .bool(false), .null]))])
        XCTAssertEqual(value.jsonText(indent: 1), "{\n \"b\": \"quote \\\" back \\\\ line\\n\\u0001\",\n \"a\": [\n  1,\n  false,\n  null\n ]\n}")
    }

    private func keys(_ value: ConfigValue?) -> [String] {
        guard case .map(let pairs)? = value else { return [] }
        return pairs.map(\.key)
    }
}
