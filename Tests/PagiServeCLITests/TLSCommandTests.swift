import Foundation
import PagiTestSupport
import XCTest

/// TLS from the executable (docs/tls.md): `check` reads certificates and keys as the server
/// would, and `pagi-serve config.yaml` serves HTTPS beside cleartext HTTP.
final class TLSCommandTests: XCTestCase {
    private var dir: URL!
    private var ca: TestCertificateAuthority!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: ServedProcess.binary.path), "pagi-serve not built")
        dir = try makeTemporaryDirectory()
        ca = try TestCertificateAuthority(in: dir.appendingPathComponent("certs"))
        try ca.issue(["localhost"], as: "localhost")
        try ca.issue(["other.test"], as: "other")
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func config(key: String, plainPort: Int = 0, tlsPort: Int = 0) -> String {
        """
        server:
          listen: ["127.0.0.1:\(plainPort)", {address: "127.0.0.1:\(tlsPort)", tls: true}]
          access_log: {to: off}
        tls: {cert: certs/localhost.crt, key: \(key)}
        hosts:
          - names: [localhost]
            routes: [{path: /, respond: {body: "over {{scheme}}"}}]
        """
    }

    private func check(_ yaml: String) throws -> (status: Int32, output: String) {
        try writeFile(dir, "config.yaml", yaml)
        return try ServedProcess.run(["check", "config.yaml"], in: dir)
    }

    func testCheckLoadsTheCertificateAndKeyAndNamesAKeyThatDoesNotMatch() throws {
        let good = try check(config(key: "certs/localhost.key"))
        XCTAssertEqual(good.status, 0, good.output)
        let mismatched = try check(config(key: "certs/other.key"))
        XCTAssertEqual(mismatched.status, 1, mismatched.output)
        XCTAssertTrue(mismatched.output.contains("config.yaml:4:6: cannot use the certificate"), mismatched.output)
        try writeFile(dir, "certs/garbage.key", "not a key\n")
        chmod(dir.appendingPathComponent("certs/garbage.key").path, 0o600)
        let garbage = try check(config(key: "certs/garbage.key"))
        XCTAssertEqual(garbage.status, 1, garbage.output)
        XCTAssertTrue(garbage.output.contains("config.yaml:4:39: cannot use the private key"), garbage.output)
    }

    func testTheServerServesHTTPSBesideHTTP() throws {
        let (plain, secure) = (try freePort(), try freePort())
        try writeFile(dir, "config.yaml", config(key: "certs/localhost.key", plainPort: plain, tlsPort: secure))
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir)
        defer { process.kill() }
        try process.waitForLog("listening on https://127.0.0.1:\(secure)")
        XCTAssertEqual(RawClient.get(port: plain, "/")?.text, "over http")
        let options = TLSClient.Options(serverName: "localhost", trusting: ca.certificate)
        XCTAssertEqual(try TLSClient.get(port: secure, "/", options)?.text, "over https")
    }

    /// `pagi-serve cert` writes what local HTTPS needs: a certificate a client can be told to trust,
    /// and a key only its owner reads.
    func testCertWritesASelfSignedCertificateTheServerServesAndAClientVerifies() throws {
        let made = Process()
        made.executableURL = ServedProcess.binary
        made.arguments = ["cert", "localhost", "127.0.0.1", "--out", "dev"]
        made.currentDirectoryURL = dir
        made.standardOutput = FileHandle.nullDevice
        try made.run()
        made.waitUntilExit()
        XCTAssertEqual(made.terminationStatus, 0)
        let key = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("dev/localhost.key").path)
        XCTAssertEqual((key[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let port = try freePort()
        try writeFile(dir, "config.yaml", """
            server:
              listen: [{address: "127.0.0.1:\(port)", tls: true}]
              access_log: {to: off}
            tls: {cert: dev/localhost.crt, key: dev/localhost.key}
            hosts:
              - names: [localhost]
                routes: [{path: /, respond: {body: "over {{scheme}}"}}]
            """)
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir)
        defer { process.kill() }
        try process.waitForLog("listening on https://")
        // curl (OpenSSL) told to trust the file, by name and by address.
        let byName = try ExternalTool.run("curl", ["-s", "--cacert", "dev/localhost.crt", "--resolve", "localhost:\(port):127.0.0.1",
                                                   "https://localhost:\(port)/"], in: dir)
        XCTAssertEqual(byName.output, "over https", byName.errors)
        let byAddress = try ExternalTool.run("curl", ["-s", "--cacert", "dev/localhost.crt", "https://127.0.0.1:\(port)/"], in: dir)
        XCTAssertEqual(byAddress.output, "over https", byAddress.errors)
        // A second run does not overwrite the key without --force.
        let again = Process()
        again.executableURL = ServedProcess.binary
        again.arguments = ["cert", "localhost", "--out", "dev"]
        again.currentDirectoryURL = dir
        again.standardError = FileHandle.nullDevice
        try again.run()
        again.waitUntilExit()
        XCTAssertEqual(again.terminationStatus, 1)
    }
}
