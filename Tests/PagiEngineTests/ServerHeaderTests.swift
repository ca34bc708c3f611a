import Foundation
import PagiTestSupport
import XCTest

/// `server.server_header` (docs/configuration.md §3): `Server: pagi-serve` by default, none when false.
final class ServerHeaderTests: XCTestCase {
    func testServerHeaderIsSentUnlessTurnedOff() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (setting, expected) in [("", "pagi-serve"), ("  server_header: false", nil)] as [(String, String?)] {
            let server = try TestServer(yaml: """
                server:
                  access_log: {to: off}
                \(setting)
                hosts:
                  - names: [localhost]
                    routes:
                      - {path: /, respond: {body: hi}}
                """, directory: dir)
            defer { server.stop() }
            let ok = try XCTUnwrap(RawClient.get(port: server.port, "/"))
            XCTAssertEqual(ok.header("Server"), expected, setting)
            XCTAssertEqual(RawClient.get(port: server.port, "/missing")?.header("Server"), expected, "error answers too")
        }
    }
}
