import XCTest
@testable import PagiConfig

final class LoaderDiagnosticsTests: XCTestCase {
    func testUnknownKeyWithSuggestionAndMissingHandlerInOneRun() {
        let yaml = """
        hosts:
          - names: [example.com]
            routes:
              - path: /
                stattic: .
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:4:9: error: route has no handler (one of: static, respond, redirect, proxy, websocket, sse, publish, openapi, health, metrics)",
            "config.yaml:5:9: error: unknown key 'stattic' in route (did you mean 'static'?)",
        ])
    }

    func testManyErrorsAreReportedSortedByPosition() {
        let yaml = """
        server:
          log_level: loud
          http2: yes please
          wokers: 2
        hosts:
          - names: {a: b}
            routes:
              - path: /
                static: .
                follow_symlinks: insde
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:14: error: invalid value 'loud' for log_level (expected one of: debug, info, warn, error)",
            "config.yaml:3:10: error: expected true or false, got 'yes please'",
            "config.yaml:4:3: error: unknown key 'wokers' in server (did you mean 'workers'?)",
            "config.yaml:6:12: error: expected a list of host names, got a mapping",
            "config.yaml:10:9: error: unknown key 'follow_symlinks' in route",
        ])
    }

    func testDidYouMeanForEnumValuesHandlersAndLogLevels() {
        let yaml = """
        server: {log_level: warning}
        hosts:
          - names: [example.com]
            routes:
              - path: /
                static: {root: ., follow_symlinks: insde, dotfiles: alow}
              - path: /api
                respnd: {status: 200}
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:1:21: error: invalid value 'warning' for log_level (did you mean 'warn'?)",
            "config.yaml:6:44: error: invalid value 'insde' for follow_symlinks (did you mean 'inside'?)",
            "config.yaml:6:61: error: invalid value 'alow' for dotfiles (did you mean 'allow'?)",
            "config.yaml:7:9: error: route has no handler (one of: static, respond, redirect, proxy, websocket, sse, publish, openapi, health, metrics)",
            "config.yaml:8:9: error: unknown key 'respnd' in route (did you mean 'respond'?)",
        ])
    }

    func testYAMLSyntaxErrorHasPosition() {
        let yaml = """
        hosts:
          - names: [a.com
            routes: []
        """
        let messages = errors(yaml)
        XCTAssertEqual(messages.count, 1)
        XCTAssertTrue(messages.first?.hasPrefix("config.yaml:3:") ?? false, "\(messages)")
        XCTAssertTrue(messages.first?.contains("error: invalid YAML: ") ?? false, "\(messages)")
    }

    func testDuplicateKeysAreRejected() {
        let yaml = """
        hosts:
          - names: [a.com]
            names: [b.com]
        """
        XCTAssertEqual(errors(yaml), ["config.yaml:2:5: error: duplicate key 'names' in mapping"])
    }

    func testEmptyFileNonMappingAndMissingHosts() {
        XCTAssertEqual(errors(""), ["config.yaml:1:1: error: the file is empty (expected a mapping with at least 'hosts')"])
        XCTAssertEqual(errors("# only a comment\n"), ["config.yaml:1:1: error: the file is empty (expected a mapping with at least 'hosts')"])
        XCTAssertEqual(errors("- a\n- b\n"), ["config.yaml:1:1: error: expected a mapping for the top level, got a list"])
        XCTAssertEqual(errors("server: {}\n"), ["config.yaml:1:1: error: missing required key 'hosts' (the list of virtual hosts)"])
        XCTAssertEqual(errors("hosts: []\n"), ["config.yaml:1:8: error: 'hosts' needs at least one host"])
        XCTAssertEqual(errors("hostz: []\n"), [
            "config.yaml:1:1: error: unknown key 'hostz' at the top level (did you mean 'hosts'?)",
            "config.yaml:1:1: error: missing required key 'hosts' (the list of virtual hosts)",
        ])
    }

    func testWrongTypesNameTheBadValue() {
        let yaml = """
        server:
          listen: [":70000", "nowhere"]
          workers: many
          limits: {connections: -5}
        hosts:
          - names: example.com
            errors: {200: e.html, abc: f.html}
            routes:
              - path: /
                redirect: {to: /x, status: 301}
              - path: /old
                redirect: {to: /x, status: 200}
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:12: error: invalid port '70000' in ':70000' (expected 0–65535)",
            "config.yaml:2:22: error: invalid listen address 'nowhere' (expected host:port, [v6]:port, :port or unix:/path.sock)",
            "config.yaml:3:12: error: expected a number of worker processes (at least 1) or 'auto', got 'many'",
            "config.yaml:4:25: error: expected a count (at least 1), got '-5'",
            "config.yaml:7:14: error: invalid status code '200' (expected 400–599)",
            "config.yaml:7:27: error: invalid status code 'abc' (expected 400–599)",
            "config.yaml:12:36: error: invalid status code 200 for redirect (expected one of: 301, 302, 303, 307, 308)",
        ])
    }

    func testDiagnosticDescriptionFormat() {
        XCTAssertEqual(Diagnostic(.warning, "x", at: SourceLocation(file: "a.yaml", line: 2, column: 3)).description, "a.yaml:2:3: warning: x")
    }
}

final class EnvironmentSubstitutionTests: XCTestCase {
    let yaml = """
    server:
      listen: ["${HOST:-127.0.0.1}:${PORT:-8080}"]
      log_level: ${LEVEL}
    \(minimalHosts)
    """

    func testDefaultsApplyWhenUnset() throws {
        let config = try loadConfig(yaml, environment: ["LEVEL": "debug"])
        XCTAssertEqual(config.server.listen.first?.address, .tcp(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(config.server.logLevel, .debug)
    }

    func testVariablesOverrideDefaults() throws {
        let config = try loadConfig(yaml, environment: ["LEVEL": "warn", "PORT": "9000", "HOST": "0.0.0.0"])
        XCTAssertEqual(config.server.listen.first?.address, .tcp(host: "0.0.0.0", port: 9000))
        XCTAssertEqual(config.server.logLevel, .warn)
    }

    func testUnsetVariableWithoutDefaultIsAnErrorAtTheScalar() {
        // The empty value is not reported again as an invalid log level.
        XCTAssertEqual(errors(yaml), ["config.yaml:3:14: error: environment variable 'LEVEL' is not set (write ${LEVEL:-default} to give a default)"])
    }

    func testSubstitutionHappensBeforeTyping() throws {
        let yaml = """
        server:
          workers: ${WORKERS:-1}
          http2: ${H2:-false}
          timeouts: {idle: "${IDLE:-5}s"}
        \(minimalHosts)
        """
        let config = try loadConfig(yaml)
        XCTAssertEqual(config.server.workers, 1)
        XCTAssertFalse(config.server.http2)
        XCTAssertEqual(config.server.timeouts.idle, 5)
    }

    func testMalformedReferences() {
        let yaml = """
        server:
          pid_file: "${1BAD}"
          log_level: "${OPEN"
        \(minimalHosts)
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:2:13: error: invalid environment variable name '1BAD' in '${1BAD}'",
            "config.yaml:3:14: error: unterminated '${' in '${OPEN'",
        ])
    }
}
