import Foundation
import PagiConfig
@testable import PagiOpenAPI
import PagiTestSupport
import XCTest

/// What API tools (schemathesis) send to an `openapi` mount with `validate: true`: exact 64-bit
/// integers and integer formats, bodies of every declared media type, synthesised examples that
/// validate against their own schemas, encoded `/` and combining marks in path parameters,
/// methods the document does not declare, and the JSON Schema keywords and formats checked.
final class OpenAPIConformanceTests: XCTestCase {
    private var dir: URL!
    private var server: TestServer!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
        try writeFile(dir, "api/store.yaml", Array(Self.storeSpec.utf8))
        server = try TestServer(routes: """
            - {path: /api/, openapi: {spec: api/store.yaml, validate: true}}
            - {path: "/other/{rest...}", respond: {body: "other {{path.rest}}"}}
            - {path: "/p/{id}", respond: {body: "id={{path.id}}"}}
            - {path: /files/, static: {root: api}}
            """, directory: dir)
    }

    override func tearDownWithError() throws {
        server?.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    private func send(_ method: String, _ path: String, type: String? = nil, body: String = "", headers: String = "") throws -> RawResponse {
        let client = try RawClient(port: server.port)
        let contentType = type.map { "Content-Type: \($0)\r\n" } ?? ""
        client.send("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\(contentType)\(headers)"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        return try XCTUnwrap(client.readResponse(), "\(method) \(path)")
    }

    private func detail(_ response: RawResponse) -> String {
        let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return object?["detail"] as? String ?? response.text
    }

    // 1. Every int64 exactly; int32 and int64 bounds.
    func testLargeIntegersAreExactAndFormatsAreBounded() throws {
        let large = try send("POST", "/api/store/order", type: "application/json", body: #"{"id":1000000000000000,"petId":10}"#)
        XCTAssertEqual(large.status, 200, large.text)
        let largest = try send("POST", "/api/store/order", type: "application/json", body: #"{"id":9223372036854775807,"petId":10}"#)
        XCTAssertEqual(largest.status, 200, largest.text)
        let beyond = try send("POST", "/api/store/order", type: "application/json", body: #"{"id":9223372036854775808,"petId":10}"#)
        XCTAssertEqual(beyond.status, 400, "beyond int64")
        let int32 = try send("POST", "/api/store/order", type: "application/json", body: #"{"id":1,"petId":10,"quantity":-2147483649}"#)
        XCTAssertEqual(int32.status, 400)
        XCTAssertTrue(detail(int32).contains("int32"), detail(int32))
        XCTAssertEqual(try send("POST", "/api/store/order", type: "application/json", body: #"{"id":1,"petId":10,"quantity":-2147483648}"#).status, 200)
    }

    // 2. Bodies validated as the media type their Content-Type names; 415 for one not declared.
    func testFormMultipartAndXMLBodiesAreReadAsTheirMediaType() throws {
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/x-www-form-urlencoded", body: "id=10&name=doggie&photoUrls=a").status, 200)
        let badForm = try send("POST", "/api/pet", type: "application/x-www-form-urlencoded", body: "id=ten&name=doggie&photoUrls=a")
        XCTAssertEqual(badForm.status, 400)
        XCTAssertEqual(detail(badForm), #"body property '/id': expected integer, got string "ten""#)
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/x-www-form-urlencoded", body: "name=doggie").status, 200,
                       "no photoUrls field is an empty array")
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/x-www-form-urlencoded",
                                body: "name=doggie&category=%7B%22id%22%3A1%7D").status, 200, "an object field is JSON")
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/x-www-form-urlencoded",
                                body: "name=doggie&category=%7B%22id%22%3A%22x%22%7D").status, 400)
        let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ndoggie\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"photoUrls\"\r\n\r\nhttps://example.com/a.png\r\n--XyZ--\r\n"
        XCTAssertEqual(try send("POST", "/api/pet", type: "multipart/form-data; boundary=XyZ", body: multipart).status, 200)
        let missingName = "--XyZ\r\nContent-Disposition: form-data; name=\"photoUrls\"\r\n\r\na\r\n--XyZ--\r\n"
        XCTAssertEqual(try send("POST", "/api/pet", type: "multipart/form-data; boundary=XyZ", body: missingName).status, 400)
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/xml",
                                body: "<pet><id>10</id><name>doggie</name><photoUrls>a</photoUrls><photoUrls>b</photoUrls></pet>").status, 200)
        let badXML = try send("POST", "/api/pet", type: "application/xml", body: "<pet><id>ten</id><name>doggie</name><photoUrls>a</photoUrls></pet>")
        XCTAssertEqual(detail(badXML), #"body property '/id': expected integer, got string "ten""#)
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/xml", body: "<pet><name>doggie</name>").status, 400, "not well-formed")
        XCTAssertEqual(try send("POST", "/api/pet", type: "text/plain", body: "anything").status, 200,
                       "media types other than JSON, forms and XML are accepted as they are")
        let csv = try send("POST", "/api/pet", type: "text/csv", body: "id,name\n10,doggie\n")
        XCTAssertEqual(csv.status, 415)
        XCTAssertEqual(csv.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(try send("POST", "/api/pet", type: "application/json", body: #"{"name":"doggie","photoUrls":[]}"#).status, 200)
    }

    // 3 and 9. Synthesised answers: allOf merged, no null, recursion ends small, and each one valid.
    func testSynthesisedExamplesMergeAllOfAndContainNoNull() throws {
        let page = try send("GET", "/api/pages")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.text, #"{"total":0,"items":[{"name":"string","children":[]}]}"#)
        let deep = try send("GET", "/api/deep")
        XCTAssertEqual(deep.status, 200)
        XCTAssertFalse(deep.text.contains("null"), deep.text)
        XCTAssertTrue(deep.text.contains(#""level8":{"leaf":1}"#), deep.text)
    }

    func testEverySynthesisedAnswerValidatesAgainstItsOwnSchema() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let documents = [dir.appendingPathComponent("api/store.yaml").path,
                         repository.appendingPathComponent("sites/api/openapi.yaml").path,
                         repository.appendingPathComponent("conformance/schemathesis/petstore-openapi.yaml").path]
        for path in documents {
            let spec = try SpecLoader.load(path: path, mountedAt: SourceLocation(file: path, line: 1, column: 1))
            var synthesizer = ExampleSynthesizer(spec.schemas)
            let validator = SchemaValidator(graph: spec.schemas, location: "body", isRequest: false)
            var checked = 0
            for (route, operation) in spec.endpoints {
                for response in operation.responses {
                    guard let schema = response.bodySchema, let example = synthesizer.example(for: schema) else { continue }
                    XCTAssertEqual(validator.validate(example, against: schema, at: ""), [],
                                   "\(path): \(operation.method) \(route) \(response.status): \(example.text)")
                    checked += 1
                }
            }
            XCTAssertGreaterThan(checked, 0, path)
        }
    }

    // 4. An encoded `/` in a parameter segment; still refused by `static`.
    func testEncodedSlashReachesPathParametersButNotStatic() throws {
        let branch = try send("GET", "/api/repos/o/r/branches/feature%2Fx/protection")
        XCTAssertEqual(branch.status, 200, branch.text)
        XCTAssertEqual(try send("GET", "/api/repos/o/r/branches/a%5Cb/protection").status, 200)
        XCTAssertEqual(try send("GET", "/p/a%2Fb").text, "id=a/b", "a {param} of other handlers gets the decoded /")
        XCTAssertEqual(try send("GET", "/files/store.yaml").status, 200)
        XCTAssertEqual(try send("GET", "/files/..%2Fapi%2Fstore.yaml").status, 400, "static keeps refusing an encoded /")
        XCTAssertEqual(try send("GET", "/files/a%5Cb").status, 400, "and an encoded backslash")
    }

    // 5. A segment starting with a combining mark.
    func testSegmentStartingWithACombiningMarkIsRouted() throws {
        let response = try send("GET", "/api/repos/o/%CC%81x/branches/main/protection")
        XCTAssertEqual(response.status, 200, response.text)
    }

    // 6. Methods the document does not declare: 405 under the mount, 501 elsewhere for unknown ones.
    func testUndeclaredMethodsGet405WithAllowUnderTheMount() throws {
        for method in ["QUERY", "TRACE", "PUT"] {
            let response = try send(method, "/api/pages")
            XCTAssertEqual(response.status, 405, method)
            XCTAssertEqual(response.header("Allow"), "GET, HEAD", method)
            XCTAssertEqual(response.header("Content-Type"), "application/problem+json", method)
        }
        XCTAssertEqual(try send("QUERY", "/other/x").status, 501, "outside the mount an unknown method stays 501")
        XCTAssertEqual(try send("QUERY", "/nowhere").status, 501)
        XCTAssertEqual(try send("POST", "/other/x").text, "other x", "known methods are unchanged")
    }

    // An operation's `security`: API keys must be present (their values are not checked).
    func testRequiredAPIKeysMustBePresent() throws {
        let missing = try send("GET", "/api/secured")
        XCTAssertEqual(missing.status, 401)
        XCTAssertEqual(detail(missing), "this operation needs header X-Key")
        XCTAssertEqual(try send("GET", "/api/secured", headers: "X-Key: anything\r\n").status, 200)
        XCTAssertEqual(try send("GET", "/api/either").status, 200, "an OAuth 2 alternative asks for nothing a stub can check")
    }

    // 7. Keywords and formats.
    func testKeywordsAndFormatsAreChecked() throws {
        func status(_ body: String) throws -> Int { try send("PATCH", "/api/things/1", type: "application/json", body: body).status }
        XCTAssertEqual(try status(#"{"when":"2024-02-29T23:59:60Z"}"#), 200)
        XCTAssertEqual(try status(#"{"when":"2024-13-45T25:00:00Z"}"#), 400, "date-time out of range")
        XCTAssertEqual(try status(#"{"day":"2023-02-29"}"#), 400, "not a leap year")
        XCTAssertEqual(try status(#"{"description":{"text":"hi","format":"plain"}}"#), 200)
        XCTAssertEqual(try status(#"{"description":{"text":"hi","format":"html"}}"#), 400, "the nested anyOf")
        XCTAssertEqual(try status(#"{}"#), 400, "minProperties")
        XCTAssertEqual(try status(#"{"step":15}"#), 200)
        XCTAssertEqual(try status(#"{"step":7}"#), 400, "multipleOf")
        XCTAssertEqual(try status(#"{"tags":["a","a"]}"#), 400, "uniqueItems")
        XCTAssertEqual(try status(#"{"kind":"thing"}"#), 200)
        XCTAssertEqual(try status(#"{"kind":"other"}"#), 400, "const")
        XCTAssertEqual(try status(#"{"code":"abc"}"#), 400, "pattern")
        XCTAssertEqual(try status(#"{"name":"admin"}"#), 400, "not")
        XCTAssertEqual(try status(#"{"id":"3fa85f64-5717-4562-b3fc-2c963f66afa6","mail":"a@b.co","site":"https://x.org/","ip4":"10.0.0.1","ip6":"::1","blob":"aGk="}"#), 200)
        for bad in [#"{"id":"3fa85f64"}"#, #"{"mail":"nope"}"#, #"{"site":"not a uri"}"#, #"{"ip4":"300.1.1.1"}"#,
                    #"{"ip6":"1:::2"}"#, #"{"blob":"a"}"#] {
            XCTAssertEqual(try status(bad), 400, bad)
        }
        XCTAssertEqual(try status(#"{"pet":{"petType":"cat","lives":9}}"#), 200)
        XCTAssertEqual(try status(#"{"pet":{"petType":"dog","lives":9}}"#), 400, "discriminator picks Dog, which needs bark")
        XCTAssertEqual(try status(#"{"pet":{"petType":"cow"}}"#), 400, "unknown discriminator value")
        XCTAssertEqual(try status(#"{"choice":5}"#), 400, "oneOf: both match")
        XCTAssertEqual(try status(#"{"choice":"x"}"#), 200)
    }

    // 8. A large document loads quickly and a recursive schema loads at all.
    func testLargeDocumentLoadsFast() throws {
        var paths: [String] = []
        for index in 0..<400 {
            paths.append("""
                  /r\(index)/{id}:
                    parameters: [{name: id, in: path, required: true, schema: {type: integer, format: int64}}]
                    get:
                      operationId: get\(index)
                      responses:
                        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Tree"}}}}
                    patch:
                      operationId: patch\(index)
                      requestBody: {content: {application/json: {schema: {allOf: [{$ref: "#/components/schemas/Tree"}, {type: object, properties: {n\(index): {type: string, example: "value \(index)"}}}]}}}}
                      responses: {"200": {description: ok}}
                """)
        }
        let document = """
            openapi: 3.0.3
            info: {title: Large, version: "1"}
            paths:
            \(paths.joined(separator: "\n"))
            components:
              schemas:
                Tree:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string, description: "\(String(repeating: "words ", count: 200))"}
                    children: {type: array, items: {$ref: "#/components/schemas/Tree"}}
            """
        try writeFile(dir, "api/large.yaml", Array(document.utf8))
        let start = Date()
        let spec = try SpecLoader.load(path: dir.appendingPathComponent("api/large.yaml").path,
                                       mountedAt: SourceLocation(file: "config.yaml", line: 1, column: 1))
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(spec.endpoints.count, 800)
        XCTAssertLessThan(seconds, 5, "800 operations in a debug build")
    }

    /// A Petstore-like document with the cases above.
    static let storeSpec = """
        openapi: 3.0.3
        info: {title: Store, version: "1"}
        paths:
          /store/order:
            post:
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
                      required: [id, petId]
                      properties:
                        id: {type: integer, format: int64}
                        petId: {type: integer, format: int64}
                        quantity: {type: integer, format: int32}
              responses: {"200": {description: ok}}
          /pet:
            post:
              requestBody:
                required: true
                content:
                  application/json: {schema: {$ref: "#/components/schemas/Pet"}}
                  application/xml: {schema: {$ref: "#/components/schemas/Pet"}}
                  application/x-www-form-urlencoded: {schema: {$ref: "#/components/schemas/Pet"}}
                  multipart/form-data: {schema: {$ref: "#/components/schemas/Pet"}}
                  text/plain: {schema: {type: string}}
              responses: {"200": {description: ok}}
          /pages:
            get:
              responses:
                "200":
                  description: a page
                  content:
                    application/json:
                      schema:
                        allOf:
                          - {type: object, required: [total, items], properties: {total: {type: integer, minimum: 0}}}
                          - {type: object, properties: {items: {type: array, items: {$ref: "#/components/schemas/Node"}}}}
          /deep:
            get:
              responses:
                "200":
                  description: nested refs
                  content: {application/json: {schema: {$ref: "#/components/schemas/Level0"}}}
          /repos/{owner}/{repo}/branches/{branch}/protection:
            parameters:
              - {name: owner, in: path, required: true, schema: {type: string}}
              - {name: repo, in: path, required: true, schema: {type: string}}
              - {name: branch, in: path, required: true, schema: {type: string}}
            get:
              responses: {"200": {description: ok, content: {application/json: {example: {protected: true}}}}}
          /secured:
            get:
              security: [{key: []}]
              responses: {"200": {description: ok}}
          /either:
            get:
              security: [{key: []}, {oauth: [read]}]
              responses: {"200": {description: ok}}
          /things/{id}:
            parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
            patch:
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
                      minProperties: 1
                      properties:
                        when: {type: string, format: date-time}
                        day: {type: string, format: date}
                        description:
                          anyOf:
                            - {type: string}
                            - {type: object, properties: {text: {type: string}, format: {type: string, enum: [markdown, plain]}}}
                        step: {type: integer, multipleOf: 5}
                        tags: {type: array, items: {type: string}, uniqueItems: true}
                        kind: {type: string, const: thing}
                        code: {type: string, pattern: "^[0-9]+$"}
                        name: {type: string, not: {enum: [admin, root]}}
                        id: {type: string, format: uuid}
                        mail: {type: string, format: email}
                        site: {type: string, format: uri}
                        ip4: {type: string, format: ipv4}
                        ip6: {type: string, format: ipv6}
                        blob: {type: string, format: byte}
                        choice: {oneOf: [{type: string}, {type: integer}, {type: number}]}
                        pet:
                          oneOf: [{$ref: "#/components/schemas/Cat"}, {$ref: "#/components/schemas/Dog"}]
                          discriminator: {propertyName: petType, mapping: {cat: Cat, dog: Dog}}
              responses: {"200": {description: ok}}
        components:
          securitySchemes:
            key: {type: apiKey, in: header, name: X-Key}
            oauth: {type: oauth2, flows: {implicit: {authorizationUrl: "https://example.com/auth", scopes: {read: read}}}}
          schemas:
            Pet:
              type: object
              required: [name, photoUrls]
              properties:
                id: {type: integer, format: int64}
                name: {type: string}
                category: {type: object, properties: {id: {type: integer}}}
                photoUrls: {type: array, items: {type: string}}
            Node:
              type: object
              required: [name]
              properties:
                name: {type: string}
                children: {type: array, items: {$ref: "#/components/schemas/Node"}}
            Cat: {type: object, required: [petType, lives], properties: {petType: {type: string}, lives: {type: integer}}}
            Dog: {type: object, required: [petType, bark], properties: {petType: {type: string}, bark: {type: boolean}}}
            Level0: {allOf: [{$ref: "#/components/schemas/Level1"}]}
            Level1: {allOf: [{$ref: "#/components/schemas/Level2"}]}
            Level2: {allOf: [{$ref: "#/components/schemas/Level3"}]}
            Level3: {allOf: [{$ref: "#/components/schemas/Level4"}]}
            Level4: {allOf: [{$ref: "#/components/schemas/Level5"}]}
            Level5: {allOf: [{$ref: "#/components/schemas/Level6"}]}
            Level6: {allOf: [{$ref: "#/components/schemas/Level7"}, {type: object, required: [level8], properties: {level8: {$ref: "#/components/schemas/Level8"}}}]}
            Level7: {type: object, required: [a], properties: {a: {$ref: "#/components/schemas/R1"}}}
            Level8: {type: object, required: [leaf], properties: {leaf: {type: integer, minimum: 1}}}
            R1: {$ref: "#/components/schemas/R2"}
            R2: {$ref: "#/components/schemas/R3"}
            R3: {$ref: "#/components/schemas/R4"}
            R4: {type: object, required: [b], properties: {b: {$ref: "#/components/schemas/R5"}}}
            R5: {type: object, required: [c], properties: {c: {$ref: "#/components/schemas/R6"}}}
            R6: {type: object, required: [d], properties: {d: {$ref: "#/components/schemas/R7"}}}
            R7: {type: object, required: [e], properties: {e: {$ref: "#/components/schemas/R8"}}}
            R8: {type: object, required: [f], properties: {f: {$ref: "#/components/schemas/R9"}}}
            R9: {type: object, required: [g], properties: {g: {$ref: "#/components/schemas/R10"}}}
            R10: {type: object, required: [h], properties: {h: {$ref: "#/components/schemas/R11"}}}
            R11: {type: object, required: [i], properties: {i: {$ref: "#/components/schemas/R12"}}}
            R12: {type: object, required: [j], properties: {j: {$ref: "#/components/schemas/R13"}}}
            R13: {type: object, required: [k], properties: {k: {type: string}}}
        """
}
