import Foundation
import PagiBuiltins
import PagiConfig
import PagiTestSupport
import XCTest

/// Mistakes in `respond`/`redirect` found when the config is compiled: reported like every other
/// config error, with the file, line and column of the mistake.
final class RespondConfigTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// Loads and compiles `yaml` (written to config.yaml); returns the printed diagnostics.
    private func diagnostics(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        try writeFile(dir, "config.yaml", yaml)
        let config = try ConfigLoader.load(path: dir.appendingPathComponent("config.yaml").path)
        XCTAssertTrue(config.warnings.isEmpty, "\(config.warnings)", file: file, line: line)
        do {
            _ = try Builtins.compile(config)
            XCTFail("expected a config error", file: file, line: line)
            return []
        } catch let error as ConfigError {
            return error.diagnostics.map(\.description)
        }
    }

    func testBrokenTemplatesPointAtTheirLineAndColumn() throws {
        let found = try diagnostics("""
            hosts:
              - names: [localhost]
                routes:
                  - path: /a
                    respond:
                      status: 200
                      body: "Hello {{query.name"
                  - path: /b
                    respond:
                      json:
                        items:
                          - "{{#path.id}}never closed"
                  - path: /c
                    redirect: {to: "/x/{{/path.id}}", status: 301}
            """)
        let config = dir.appendingPathComponent("config.yaml").path
        XCTAssertEqual(found.count, 3, "every broken template is reported in one run: \(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("\(config):7:") && $0.contains("error: invalid template") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("\(config):12:") && $0.contains("error: invalid template") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("\(config):14:") && $0.contains("error: invalid template") }, "\(found)")
    }

    func testBrokenTemplateColumnPointsIntoTheLine() throws {
        let found = try diagnostics("""
            hosts:
              - names: [localhost]
                routes:
                  - path: /a
                    respond: {body: "ok {{#items}} and {{/other}} end"}
            """)
        let config = dir.appendingPathComponent("config.yaml").path
        let diagnostic = try XCTUnwrap(found.first)
        let position = diagnostic.dropFirst(config.count + 1).split(separator: ":").prefix(2).compactMap { Int($0) }
        XCTAssertEqual(position.first, 5, diagnostic)
        XCTAssertGreaterThan(position.last ?? 0, 27, "the column lies inside the template, not at the route: \(diagnostic)")
    }

    func testBrokenTemplateFileIsReportedInThatFile() throws {
        try writeFile(dir, "stubs/page.html", "<h1>Hi</h1>\n<p>{{#user}}{{name}}</p>\n")
        let found = try diagnostics("""
            hosts:
              - names: [localhost]
                routes:
                  - path: /page
                    respond: {file: stubs/page.html, template: true}
            """)
        let stub = dir.appendingPathComponent("stubs/page.html").path
        XCTAssertEqual(found.count, 1, "\(found)")
        XCTAssertTrue(found.first?.hasPrefix("\(stub):") == true, "\(found)")
        XCTAssertTrue(found.first?.contains("error: invalid template") == true, "\(found)")
    }

    /// Found by the loader already, at the status itself.
    func testAnInformationalStatusIsNotAResponse() throws {
        try writeFile(dir, "config.yaml", """
            hosts:
              - names: [localhost]
                routes:
                  - path: /wait
                    respond: [{body: ok}, {status: 102}]
            """)
        let config = dir.appendingPathComponent("config.yaml").path
        XCTAssertThrowsError(try ConfigLoader.load(path: config)) { error in
            XCTAssertEqual((error as? ConfigError)?.diagnostics.map(\.description),
                           ["\(config):5:40: error: respond status 102 is informational (1xx); use 200-599"])
        }
    }

    func testAMissingStubFileIsAConfigError() throws {
        let found = try diagnostics("""
            hosts:
              - names: [localhost]
                routes:
                  - path: /users
                    respond: {file: stubs/nowhere.json}
            """)
        let config = dir.appendingPathComponent("config.yaml").path
        XCTAssertEqual(found, ["\(config):5:9: error: cannot read respond file '\(dir.appendingPathComponent("stubs/nowhere.json").path)'"])
    }
}
