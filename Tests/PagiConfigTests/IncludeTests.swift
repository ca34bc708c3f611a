import XCTest
@testable import PagiConfig

final class IncludeTests: XCTestCase {
    func testGlobIncludesMergeHostsAndMiddlewareInSortedOrder() throws {
        let directory = try TemporaryDirectory()
        try directory.makeDirectory("sites/b")
        let main = try directory.write("config.yaml", """
        include: [hosts/*.yaml]
        middleware:
          secure: [request_id]
        hosts:
          - names: [main.com]
            middleware: [secure, shared]
            routes: [{path: /, static: .}]
        """)
        try directory.write("hosts/b.yaml", """
        hosts:
          - names: [b.com]
            routes: [{path: /, static: ../sites/b}]
        """)
        try directory.write("hosts/a.yaml", """
        middleware:
          shared: [{body_limit: 1MiB}]
        hosts:
          - names: [a.com]
            middleware: [secure]
            routes: [{path: /, health: true}]
        """)
        let config = try ConfigLoader.load(path: main, environment: [:])
        XCTAssertEqual(config.hosts.map(\.names), [["main.com"], ["a.com"], ["b.com"]])
        XCTAssertEqual(config.files, [main, directory.path + "/hosts/a.yaml", directory.path + "/hosts/b.yaml"])
        XCTAssertEqual(config.middlewareStacks.keys.sorted(), ["secure", "shared"])
        guard case .static(let files) = config.hosts[2].routes[0].handler else { return XCTFail("expected static") }
        XCTAssertEqual(files.root, directory.path + "/sites/b")
        XCTAssertEqual(config.hosts[1].routes[0].handler.name, "health")
        XCTAssertEqual(config.middlewareStacks["secure"]?.map(\.location.file), [main])
        XCTAssertEqual(config.middlewareStacks["shared"]?.map(\.location.file), [directory.path + "/hosts/a.yaml"])
    }

    func testErrorInIncludedFileNamesThatFile() throws {
        let directory = try TemporaryDirectory()
        try directory.write("config.yaml", """
        include: [extra.yaml]
        server: {wokers: 1}
        hosts:
          - names: [a.com]
        """)
        try directory.write("extra.yaml", """
        server: {}
        hosts:
          - names: [b.com]
            routes:
              - path: /
                stattic: .
        """)
        XCTAssertEqual(try loadErrors(directory, "config.yaml"), [
            "DIR/config.yaml:2:10: error: unknown key 'wokers' in server (did you mean 'workers'?)",
            "DIR/extra.yaml:1:1: error: 'server' is only allowed in the main file (an included file may hold hosts, middleware and include)",
            "DIR/extra.yaml:5:9: error: route has no handler (one of: static, respond, redirect, proxy, websocket, sse, publish, openapi, health, metrics)",
            "DIR/extra.yaml:6:9: error: unknown key 'stattic' in route (did you mean 'static'?)",
        ])
    }

    func testRelativeMainPathStaysRelativeInDiagnostics() throws {
        let directory = try TemporaryDirectory()
        try directory.write("conf/config.yaml", "include: [more/*.yaml]\n")
        try directory.write("conf/more/x.yaml", "hosts:\n  - names: [a.com]\n    rotues: []\n")
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(directory.path))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        XCTAssertThrowsError(try ConfigLoader.load(path: "conf/config.yaml", environment: [:])) { error in
            XCTAssertEqual((error as? ConfigError)?.description,
                           "conf/more/x.yaml:3:5: error: unknown key 'rotues' in host (did you mean 'routes'?)")
        }
    }

    func testIncludeCycleMissingFileAndEmptyGlob() throws {
        let directory = try TemporaryDirectory()
        try directory.write("config.yaml", """
        include: [a.yaml, missing.yaml, "none/*.yaml"]
        hosts:
          - names: [main.com]
        """)
        try directory.write("a.yaml", "include: [b.yaml]\nhosts:\n  - names: [a.com]\n")
        try directory.write("b.yaml", "include: [a.yaml]\n")
        XCTAssertEqual(try loadErrors(directory, "config.yaml"), [
            "DIR/config.yaml:1:19: error: include file 'missing.yaml' not found",
            "DIR/config.yaml:1:33: error: include pattern 'none/*.yaml' matches no file",
            "DIR/b.yaml:1:11: error: include cycle: DIR/a.yaml → DIR/b.yaml → DIR/a.yaml",
        ])
    }

    func testIncludedFileWithDuplicateHostAndStack() throws {
        let directory = try TemporaryDirectory()
        try directory.write("config.yaml", """
        include: [other.yaml]
        middleware:
          common: [request_id]
        hosts:
          - names: [a.com]
        """)
        try directory.write("other.yaml", """
        middleware:
          common: [request_id]
        hosts:
          - names: [A.com]
        """)
        XCTAssertEqual(try loadErrors(directory, "config.yaml"), [
            "DIR/other.yaml:2:3: error: middleware stack 'common' is already defined at DIR/config.yaml:3:3",
            "DIR/other.yaml:4:5: error: host name 'a.com' is already used by the host at DIR/config.yaml:5:5",
        ])
    }

    func testNestedIncludeIsRelativeToTheIncludingFile() throws {
        let directory = try TemporaryDirectory()
        try directory.makeDirectory("sites/deep/www")
        let main = try directory.write("config.yaml", "include: [sites/site.yaml]\n")
        try directory.write("sites/site.yaml", "include: [deep/*.yaml]\n")
        try directory.write("sites/deep/host.yaml", "hosts:\n  - names: [deep.com]\n    routes: [{path: /, static: www}]\n")
        let config = try ConfigLoader.load(path: main, environment: [:])
        XCTAssertEqual(config.files.count, 3)
        guard case .static(let files) = config.hosts.first?.routes.first?.handler else { return XCTFail("expected static") }
        XCTAssertEqual(files.root, directory.path + "/sites/deep/www")
    }

    private func loadErrors(_ directory: TemporaryDirectory, _ file: String) throws -> [String] {
        do {
            _ = try ConfigLoader.load(path: directory.path + "/" + file, environment: [:])
            XCTFail("expected errors")
            return []
        } catch let error as ConfigError {
            return error.diagnostics.filter { $0.severity == .error }.map { $0.description.replacingOccurrences(of: directory.path, with: "DIR") }
        }
    }
}
