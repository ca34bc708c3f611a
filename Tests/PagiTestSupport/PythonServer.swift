import Foundation
import XCTest

/// A Python `http.server` script run as a test's upstream: an HTTP server that does exactly what
/// the test needs (counts, stalls, sends what it is told). The script reads its port from
/// `sys.argv[1]`. Skips the test when Python is missing.
public final class PythonServer {
    public let port: Int
    private let process = Process()

    public init(_ script: String) throws {
        try XCTSkipUnless((try ExternalTool.run("env", ["python3", "-c", "import http.server"])).status == 0, "python3 is needed")
        port = try freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, String(port)]
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while (try? connectToLoopback(port: port, timeout: 1)).map({ close($0) }) == nil {
            guard Date() < deadline, process.isRunning else {
                stop()
                throw XCTSkip("the Python server did not start")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }
}
