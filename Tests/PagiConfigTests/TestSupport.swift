import Foundation
import XCTest
@testable import PagiConfig

/// A fresh temporary directory, deleted when the test object goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "pagi-config-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `text` to `relativePath`, creating folders; returns the full path.
    @discardableResult
    func write(_ relativePath: String, _ text: String) throws -> String {
        let full = path + "/" + relativePath
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
        return full
    }

    func makeDirectory(_ relativePath: String) throws {
        try FileManager.default.createDirectory(atPath: path + "/" + relativePath, withIntermediateDirectories: true)
    }
}

/// A valid host whose route serves the working directory, to append to configs under test.
let minimalHosts = """
hosts:
  - names: [example.com]
    routes:
      - path: /
        static: .
"""

func loadConfig(_ yaml: String, file: String = "config.yaml", environment: [String: String] = [:]) throws -> Config {
    try ConfigLoader.load(yaml: yaml, fileName: file, environment: environment)
}

/// The printed diagnostics of a config that must fail to load.
func failures(_ yaml: String, file: String = "config.yaml", environment: [String: String] = [:],
              line: UInt = #line) -> [String] {
    do {
        _ = try loadConfig(yaml, file: file, environment: environment)
        XCTFail("expected the config to be rejected", line: line)
        return []
    } catch let error as ConfigError {
        return error.diagnostics.map(\.description)
    } catch {
        XCTFail("unexpected error \(error)", line: line)
        return []
    }
}

/// Only the `error:` lines of a rejected config.
func errors(_ yaml: String, file: String = "config.yaml", environment: [String: String] = [:], line: UInt = #line) -> [String] {
    failures(yaml, file: file, environment: environment, line: line).filter { $0.contains(": error: ") }
}

func warningMessages(_ config: Config) -> [String] { config.warnings.map(\.description) }

/// What the loader built of a config it refused, and every diagnostic it printed.
func partialConfig(_ yaml: String, file: String = "config.yaml") -> (config: Config?, diagnostics: [String]) {
    do {
        return (try loadConfig(yaml, file: file), [])
    } catch let error as ConfigError {
        return (error.partial, error.diagnostics.map(\.description))
    } catch {
        return (nil, ["\(error)"])
    }
}
