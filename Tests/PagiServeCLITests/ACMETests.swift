import Foundation
import NIOSSL
import PagiTestSupport
import Synchronization
import XCTest

/// Automatic certificates (docs/tls.md, *Automatic certificates*) end to end against Pebble, the
/// ACME test server (Debian `pebble`; `scripts/test` installs it): a host obtains its certificate
/// by http-01 or tls-alpn-01, HTTPS verifies with Pebble's root, and a renewal — Pebble issues
/// 21-second certificates here, so two thirds of the lifetime pass within the test — replaces it
/// under load without a failed request.
final class ACMETests: XCTestCase {
    private var dir: URL!
    private var served: ServedProcess?
    private var pebble: Pebble?

    override func setUpWithError() throws {
        guard ExternalTool.isInstalled("pebble"), ExternalTool.isInstalled("pebble-challtestsrv") else {
            throw XCTSkip("pebble is not installed (scripts/test installs it)")
        }
        dir = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        if let served {
            let workers = (try? String(contentsOfFile: "/proc/\(served.pid)/task/\(served.pid)/children", encoding: .utf8)) ?? ""
            served.kill()
            for pid in workers.split(separator: " ").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        pebble?.stop()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func testAHostObtainsItsCertificateByHTTP01AndARenewalUnderLoadFailsNoRequest() throws {
        let (httpPort, tlsPort) = (try freePort(), try freePort())
        let pebble = try startPebble(httpPort: httpPort, tlsPort: tlsPort)
        try writeConfig(listen: "\"127.0.0.1:\(httpPort)\", {address: \"127.0.0.1:\(tlsPort)\", tls: true}", challenge: "http-01", pebble: pebble)
        served = try ServedProcess(arguments: ["config.yaml"], directory: dir)
        let first = try obtainedCertificate(port: tlsPort, pebble: pebble)
        // Stored with the modes of docs/tls.md: nobody else reads a key.
        let issuer = dir.appendingPathComponent("acme/localhost-\(pebble.port)-dir").path
        for file in ["account.key", "site.test/key.pem", "site.test/cert.pem"] {
            XCTAssertEqual(try mode(issuer + "/" + file), 0o600, file)
        }
        XCTAssertEqual(try mode(issuer), 0o700)
        try renewalUnderLoad(port: tlsPort, pebble: pebble, replacing: first)
        // Plain HTTP serves on all along.
        XCTAssertEqual(RawClient.get(port: httpPort, "/", headers: ["Host": "site.test"])?.status, 200)
    }

    /// Workers (a supervisor runs the ACME client) answer TLS-ALPN-01 on the TLS listener — there
    /// is no plain-HTTP one — and are replaced one at a time when the certificate is renewed.
    func testWorkersAnswerTLSALPN01AndServeTheRenewedCertificate() throws {
        guard let binary = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"],
              FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("PAGI_RELEASE_BINARY names no release build of pagi-serve (scripts/test sets it)")
        }
        let tlsPort = try freePort()
        let pebble = try startPebble(httpPort: try freePort(), tlsPort: tlsPort)
        try writeConfig(listen: "{address: \"127.0.0.1:\(tlsPort)\", tls: true}", challenge: "tls-alpn-01", pebble: pebble, server: "workers: 2")
        served = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: URL(fileURLWithPath: binary))
        let first = try obtainedCertificate(port: tlsPort, pebble: pebble)
        try renewalUnderLoad(port: tlsPort, pebble: pebble, replacing: first)
    }

    /// Until a certificate is obtained, TLS clients get a clear alert (not another site's
    /// certificate), the failure is logged with its cause and the next attempt, and plain HTTP serves.
    func testWithoutACertificateTLSClientsGetAnAlertAndTheFailureIsLogged() throws {
        let (httpPort, tlsPort) = (try freePort(), try freePort())
        let pebble = try startPebble(httpPort: httpPort, tlsPort: tlsPort)
        try writeFile(dir, "config.yaml", """
            server:
              listen: ["127.0.0.1:\(httpPort)", {address: "127.0.0.1:\(tlsPort)", tls: true}]
            tls:
              acme: {directory: "https://localhost:\(pebble.port)/no-directory-here", storage: acme, ca_roots: \(pebble.ca.certificate)}
            hosts:
              - names: [site.test]
                routes: [{path: /, respond: {body: hello}}]
            """)
        served = try ServedProcess(arguments: ["config.yaml"], directory: dir)
        try served?.waitForLog("ACME: could not obtain the certificate for site.test: https://localhost:\(pebble.port)/no-directory-here is not an ACME directory (status 404)")
        try served?.waitForLog("next attempt in 60 s; until then TLS clients asking for these names get an alert")
        XCTAssertThrowsError(try TLSClient.get(port: tlsPort, "/", options(pebble))) { error in
            XCTAssertTrue("\(error)".contains("INTERNAL_ERROR"), "\(error)")
        }
        XCTAssertEqual(RawClient.get(port: httpPort, "/", headers: ["Host": "site.test"])?.text, "hello")
    }

    /// Workers that drop privileges answer challenges from the storage: one they cannot reach stops
    /// the start with the reason, rather than every validation failing later.
    func testWorkersWithoutPrivilegesRefuseAStorageTheyCannotReach() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root: only root can switch users")
        guard getpwnam("nobody") != nil else { throw XCTSkip("this system has no user 'nobody'") }
        guard let binary = ProcessInfo.processInfo.environment["PAGI_RELEASE_BINARY"] else {
            throw XCTSkip("PAGI_RELEASE_BINARY names no release build of pagi-serve (scripts/test sets it)")
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("private"), withIntermediateDirectories: true)
        XCTAssertEqual(chmod(dir.appendingPathComponent("private").path, 0o700), 0)
        try writeFile(dir, "config.yaml", """
            server:
              listen: ["127.0.0.1:\(try freePort())", {address: "127.0.0.1:\(try freePort())", tls: true}]
              workers: 2
              user: nobody
            tls: {acme: {storage: private/acme}}
            hosts:
              - names: [site.test]
                routes: [{path: /, respond: {body: hello}}]
            """)
        let process = try ServedProcess(arguments: ["config.yaml"], directory: dir, binary: URL(fileURLWithPath: binary), servingAs: nil)
        served = process
        XCTAssertEqual(process.waitForExit(), 1)
        XCTAssertTrue(process.log.contains("workers serving as 'nobody' cannot pass through \(dir.path)/private to answer ACME challenges"), process.log)
    }

    // MARK: - Helpers

    private func writeConfig(listen: String, challenge: String, pebble: Pebble, server: String = "") throws {
        try writeFile(dir, "site/index.html", "hello\n")
        try writeFile(dir, "config.yaml", """
            server:
              listen: [\(listen)]
              \(server)
            tls:
              acme:
                email: ops@site.test
                directory: https://localhost:\(pebble.port)/dir
                challenge: \(challenge)
                storage: acme
                ca_roots: \(pebble.ca.certificate)
            hosts:
              - names: [site.test, www.site.test]
                routes: [{path: /, static: {root: site}}]
            """)
    }

    private func options(_ pebble: Pebble, name: String = "site.test") -> TLSClient.Options {
        TLSClient.Options(serverName: name, trusting: pebble.root)
    }

    /// Waits until both names are served over HTTPS with a certificate Pebble's root verifies.
    private func obtainedCertificate(port: Int, pebble: Pebble) throws -> NIOSSLCertificate {
        let deadline = Date().addingTimeInterval(60)
        while (try? TLSClient.get(port: port, "/", options(pebble)))?.text != "hello\n" {
            guard Date() < deadline else { throw TimedOut(what: "a certificate from Pebble", log: served?.log ?? "") }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTAssertEqual(try TLSClient.get(port: port, "/", options(pebble, name: "www.site.test"))?.text, "hello\n")
        return try XCTUnwrap(try TLSClient(port: port, options(pebble)).peerCertificate())
    }

    /// Four clients make a new verified connection per request until the certificate served is
    /// another one; none of their requests may fail.
    private func renewalUnderLoad(port: Int, pebble: Pebble, replacing first: NIOSSLCertificate) throws {
        let renewed = Atomic<Bool>(false)
        let requests = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let root = pebble.root
        DispatchQueue.concurrentPerform(iterations: 5) { client in
            let options = TLSClient.Options(serverName: "site.test", trusting: root)
            let deadline = Date().addingTimeInterval(45)
            var extra = 20 // requests after the renewal was seen
            while Date() < deadline, extra > 0 {
                if renewed.load(ordering: .relaxed) { extra -= 1 }
                do {
                    if client == 0 {
                        if try TLSClient(port: port, options).peerCertificate() != first { renewed.store(true, ordering: .relaxed) }
                        Thread.sleep(forTimeInterval: 0.05)
                        continue
                    }
                    let answer = try TLSClient.get(port: port, "/", options)
                    if answer?.text != "hello\n" { failures.withLock { $0.append("answer \(String(describing: answer?.status))") } }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
                requests.add(1, ordering: .relaxed)
            }
        }
        XCTAssertTrue(renewed.load(ordering: .relaxed), "no renewed certificate within 45 s:\n\(served?.log ?? "")")
        XCTAssertEqual(failures.withLock { $0 }, [], "of \(requests.load(ordering: .relaxed)) requests")
        XCTAssertGreaterThan(requests.load(ordering: .relaxed), 50)
    }

    private func mode(_ path: String) throws -> mode_t {
        var info = stat()
        guard stat(path, &info) == 0 else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        return info.st_mode & 0o777
    }

    private struct TimedOut: Error, CustomStringConvertible {
        let what: String
        let log: String
        var description: String { "no \(what) in time; server log:\n\(log)" }
    }

    private func startPebble(httpPort: Int, tlsPort: Int) throws -> Pebble {
        let started = try Pebble(in: dir.appendingPathComponent("pebble"), httpPort: httpPort, tlsPort: tlsPort)
        pebble = started
        return started
    }
}

/// Pebble with its companion DNS server (`pebble-challtestsrv`), which resolves every name to
/// 127.0.0.1: validation requests for `site.test` reach the server under test on `httpPort` and
/// `tlsPort`. Its own HTTPS uses a certificate of a test CA (`ca`); `root` is the root it signs with.
private final class Pebble {
    let port: Int
    let ca: TestCertificateAuthority
    let root: String
    private var processes: [Process] = []

    init(in directory: URL, httpPort: Int, tlsPort: Int) throws {
        ca = try TestCertificateAuthority(in: directory)
        let (cert, key) = try ca.issue(["localhost"], as: "localhost")
        let (dns, management) = (try freePort(), try freePort())
        port = try freePort()
        root = directory.appendingPathComponent("pebble-root.pem").path
        let config = directory.appendingPathComponent("pebble.json")
        try """
            {"pebble": {"listenAddress": "127.0.0.1:\(port)", "managementListenAddress": "127.0.0.1:\(management)",
              "certificate": "\(cert)", "privateKey": "\(key)", "httpPort": \(httpPort), "tlsPort": \(tlsPort),
              "ocspResponderURL": "", "externalAccountBindingRequired": false, "certificateValidityPeriod": 21}}
            """.write(to: config, atomically: true, encoding: .utf8)
        try launch("pebble-challtestsrv", ["-defaultIPv6", "", "-dns01", "127.0.0.1:\(dns)", "-http01", "", "-https01", "",
                                           "-tlsalpn01", "", "-management", "127.0.0.1:\(try freePort())"])
        // No random validation delays; 5 % of nonces are still refused, which the client must retry.
        try launch("pebble", ["-config", config.path, "-dnsserver", "127.0.0.1:\(dns)"], environment: ["PEBBLE_VA_NOSLEEP": "1"])
        let deadline = Date().addingTimeInterval(15)
        while true {
            let fetched = try ExternalTool.run("curl", ["-sf", "--cacert", ca.certificate, "-o", root, "https://localhost:\(management)/roots/0"])
            if fetched.status == 0 { break }
            guard Date() < deadline else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: "Pebble's root"]) }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    private func launch(_ tool: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + tool)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        processes.append(process)
    }

    func stop() {
        for process in processes where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
