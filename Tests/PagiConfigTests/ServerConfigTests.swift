import Foundation
import XCTest
@testable import PagiConfig

final class ServerConfigTests: XCTestCase {
    func testDefaultsOfEveryServerKey() throws {
        let config = try loadConfig(minimalHosts)
        let server = config.server
        XCTAssertEqual(server.listen.map(\.address), [.tcp(host: "127.0.0.1", port: 8080)])
        XCTAssertEqual(server.workers, 1)
        XCTAssertNil(server.threads)
        XCTAssertEqual(server.maxRequests, 0)
        XCTAssertEqual(server.logLevel, .info)
        XCTAssertEqual(server.accessLog, AccessLogConfig())
        XCTAssertEqual(server.accessLog.to, .stdout)
        XCTAssertEqual(server.accessLog.format, .combined)
        XCTAssertEqual(server.timeouts, TimeoutsConfig())
        XCTAssertEqual([server.timeouts.header, server.timeouts.body, server.timeouts.idle, server.timeouts.write, server.timeouts.shutdown], [10, 60, 75, 60, 30])
        XCTAssertEqual(server.limits, LimitsConfig())
        XCTAssertEqual(server.limits.connections, 10_000)
        XCTAssertEqual(server.limits.headerBytes, 16_384)
        XCTAssertEqual(server.limits.uriBytes, 8_192)
        XCTAssertEqual(server.limits.bodyBytes, 10_485_760)
        XCTAssertEqual(server.limits.headers, 100)
        XCTAssertEqual(server.trustedProxies, [])
        XCTAssertTrue(server.http2)
        XCTAssertNil(server.pidFile)
        XCTAssertNil(server.adminListen)
        XCTAssertNil(config.tls)
        XCTAssertEqual(config.pubsub, "memory")
        XCTAssertEqual(config.warnings, [])
    }

    func testEveryServerKey() throws {
        let directory = try TemporaryDirectory()
        let yaml = """
        server:
          listen: ["0.0.0.0:80"]
          workers: 1
          threads: 4
          max_requests: 0
          log_level: debug
          access_log: {to: logs/access.log, format: json}
          timeouts: {header: 250ms, body: 1m, idle: 0, write: 1h, shutdown: 5}
          limits: {connections: 50, header_bytes: 8KiB, uri_bytes: 1KB, body_bytes: 1MiB, headers: 20}
          trusted_proxies: [10.0.0.0/8, "::1/128"]
          http2: false
          pid_file: run/pagi.pid
        \(minimalHosts)
        """
        let file = directory.path + "/config.yaml"
        let server = try loadConfig(yaml, file: file).server
        XCTAssertEqual(server.listen.map(\.address), [.tcp(host: "0.0.0.0", port: 80)])
        XCTAssertEqual(server.threads, 4)
        XCTAssertEqual(server.logLevel, .debug)
        XCTAssertEqual(server.accessLog.to, .file(directory.path + "/logs/access.log"))
        XCTAssertEqual(server.accessLog.format, .json)
        XCTAssertEqual(server.timeouts.header, 0.25)
        XCTAssertEqual(server.timeouts.body, 60)
        XCTAssertEqual(server.timeouts.idle, 0)
        XCTAssertEqual(server.timeouts.write, 3600)
        XCTAssertEqual(server.timeouts.shutdown, 5)
        XCTAssertEqual(server.limits.connections, 50)
        XCTAssertEqual(server.limits.headerBytes, 8192)
        XCTAssertEqual(server.limits.uriBytes, 1000)
        XCTAssertEqual(server.limits.bodyBytes, 1_048_576)
        XCTAssertEqual(server.limits.headers, 20)
        XCTAssertEqual(server.trustedProxies.map(\.prefixLength), [8, 128])
        XCTAssertTrue(server.trustedProxies[0].contains([10, 1, 2, 3]))
        XCTAssertFalse(server.http2)
        XCTAssertEqual(server.pidFile, directory.path + "/run/pagi.pid")
    }

    func testAutoWorkersAndThreads() throws {
        let config = try loadConfig("server: {workers: auto, threads: auto}\n" + minimalHosts)
        XCTAssertNil(config.server.workers)
        XCTAssertNil(config.server.threads)
        XCTAssertEqual(warningMessages(config), [], "no route uses channels")
        // Several workers and routes that use in-memory channels: a message published in one worker
        // would not reach the streams of another.
        let channels = try loadConfig("""
            server: {workers: auto}
            hosts:
              - names: [localhost]
                routes:
                  - {path: /feed, sse: {subscribe: news}}
            """)
        XCTAssertEqual(warningMessages(channels), [
            "config.yaml:1:19: warning: with pubsub: memory, channels are per worker process: use pubsub: redis://… to share them",
        ])
        let echo = try loadConfig("server: {workers: 2}\nhosts:\n  - names: [localhost]\n    routes:\n      - {path: /ws, websocket: {echo: true}}\n")
        XCTAssertEqual(warningMessages(echo), [], "an echo WebSocket shares nothing")
    }

    func testListenForms() throws {
        let yaml = """
        server:
          listen:
            - 127.0.0.1:8080
            - :9090
            - "[::1]:8443"
            - localhost:0
            - {address: ":8444", http2: false}
        \(minimalHosts)
        """
        let listeners = try loadConfig(yaml).server.listen
        XCTAssertEqual(listeners.map(\.address), [
            .tcp(host: "127.0.0.1", port: 8080), .tcp(host: "", port: 9090), .tcp(host: "::1", port: 8443),
            .tcp(host: "localhost", port: 0), .tcp(host: "", port: 8444),
        ])
        XCTAssertEqual(listeners.map(\.http2), [true, true, true, true, false])
        XCTAssertEqual(listeners[0].location, SourceLocation(file: "config.yaml", line: 3, column: 7))
    }

    func testSingleListenStringIsAccepted() throws {
        let config = try loadConfig("server: {listen: \":8000\"}\n" + minimalHosts)
        XCTAssertEqual(config.server.listen.map(\.address), [.tcp(host: "", port: 8000)])
    }

    /// Features of later releases warn; a TLS listener without any certificate is an error.
    func testListenerFeaturesOfLaterReleasesWarnAndATLSListenerNeedsACertificate() throws {
        let yaml = """
        server:
          listen:
            - unix:/tmp/pagi.sock
            - {address: ":8443", tls: true, proxy_protocol: true}
          max_requests: 1000
          admin: {listen: "127.0.0.1:9180"}
        \(minimalHosts)
        """
        let (partial, errors) = partialConfig(yaml)
        let config = try XCTUnwrap(partial)
        XCTAssertEqual(config.server.listen.map(\.address), [.unix(path: "/tmp/pagi.sock"), .tcp(host: "", port: 8443)])
        XCTAssertTrue(config.server.listen[1].tls)
        XCTAssertTrue(config.server.listen[1].proxyProtocol)
        XCTAssertEqual(config.server.maxRequests, 1000)
        XCTAssertEqual(config.server.adminListen?.address, .tcp(host: "127.0.0.1", port: 9180))
        XCTAssertEqual(errors, [
            "config.yaml:4:7: error: this listener serves TLS but no certificate is configured: add tls: {cert, key} at the top level, to a host, or to the listener",
            "config.yaml:4:53: warning: 'proxy_protocol' is not supported yet",
        ])
    }

    func testListenErrors() {
        let yaml = """
        server:
          listen:
            - "[::1:80"
            - 10.0.0.1
            - {address: ":80", tsl: true}
            - {http2: true}
            - "unix:"
        \(minimalHosts)
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:3:7: error: invalid listen address '[::1:80' (expected host:port, [v6]:port, :port or unix:/path.sock)",
            "config.yaml:4:7: error: invalid listen address '10.0.0.1' (expected host:port, [v6]:port, :port or unix:/path.sock)",
            "config.yaml:5:24: error: unknown key 'tsl' in listen item (did you mean 'tls'?)",
            "config.yaml:6:7: error: missing required key 'address' in listen item",
            "config.yaml:7:7: error: invalid listen address 'unix:' (expected host:port, [v6]:port, :port or unix:/path.sock)",
        ])
    }

    func testTrustedProxiesAreValidated() {
        XCTAssertEqual(errors("server: {trusted_proxies: [10.0.0.0/8, 300.1.1.1/8, \"fe80::/10\", \"::g/3\"]}\n" + minimalHosts), [
            "config.yaml:1:40: error: invalid CIDR '300.1.1.1/8' (expected e.g. 10.0.0.0/8 or fd00::/8)",
            "config.yaml:1:66: error: invalid CIDR '::g/3' (expected e.g. 10.0.0.0/8 or fd00::/8)",
        ])
    }

    func testTopLevelTLSAndPubSub() throws {
        let directory = try TemporaryDirectory()
        for file in ["certs/server.crt", "keys/server.key", "certs/ca.crt"] { _ = try directory.write(file, "PEM") }
        chmod(directory.path + "/keys/server.key", 0o600)
        let yaml = """
        server: {listen: ["127.0.0.1:8443"]}
        tls:
          cert: certs/server.crt
          key: \(directory.path)/keys/server.key
          client_ca: certs/ca.crt
          min_version: "1.3"
        pubsub: redis://127.0.0.1:6379/0
        \(minimalHosts)
        """
        let config = try loadConfig(yaml, file: directory.path + "/config.yaml")
        XCTAssertEqual(config.tls?.cert, directory.path + "/certs/server.crt")
        XCTAssertEqual(config.tls?.key, directory.path + "/keys/server.key")
        XCTAssertEqual(config.tls?.clientCA, directory.path + "/certs/ca.crt")
        XCTAssertEqual(config.tls?.clientAuth, .require)
        XCTAssertEqual(config.tls?.minVersion, "1.3")
        XCTAssertEqual(config.pubsub, "redis://127.0.0.1:6379/0")
        XCTAssertEqual(warningMessages(config).map { $0.components(separatedBy: " warning: ").last ?? $0 },
                       ["a certificate is configured but no listener serves TLS: add one, e.g. listen: [\"127.0.0.1:8080\", {address: \"127.0.0.1:8443\", tls: true}]"])
    }

    /// Certificate files must be there and readable; a key others may read is warned about; a
    /// listener may carry its own certificate; `acme` replaces `cert` and `key`, not both.
    func testCertificateFilesAreCheckedAndAListenerMayCarryItsOwn() throws {
        let directory = try TemporaryDirectory()
        for file in ["server.crt", "server.key"] { _ = try directory.write(file, "PEM") }
        chmod(directory.path + "/server.key", 0o644)
        let yaml = """
        server:
          listen: [{address: "127.0.0.1:8443", tls: {cert: server.crt, key: server.key}}, {address: ":9443", tls: true}]
        hosts:
          - names: [a.com]
            tls: {cert: missing.crt, key: server.key, acme: {email: a@b.c}}
            routes: [{path: /, respond: {body: ok}}]
        """
        let (partial, diagnostics) = partialConfig(yaml, file: directory.path + "/config.yaml")
        let config = try XCTUnwrap(partial)
        XCTAssertEqual(config.server.listen[0].tlsSettings?.cert, directory.path + "/server.crt")
        XCTAssertTrue(config.server.listen[1].tls)
        let file = directory.path + "/config.yaml"
        XCTAssertEqual(diagnostics, [
            "\(file):2:69: warning: private key '\(directory.path)/server.key' may be read by others than its owner (mode 644): chmod 600 it",
            "\(file):5:11: error: tls takes either 'cert' and 'key' or 'acme', not both",
            "\(file):5:53: error: challenge: http-01 is answered on a plain-HTTP listener, and none is configured: add one (port 80 for a public CA) or use challenge: tls-alpn-01",
        ])
    }

    /// Only a regular file is read as PEM: a device or a directory named by mistake is refused, never read.
    func testCertificatePathsThatAreNotRegularFilesAreRefused() {
        XCTAssertEqual(errors("tls: {cert: /dev/zero, key: /dev}\n" + minimalHosts), [
            "config.yaml:1:13: error: certificate '/dev/zero' is not a regular file of at most 4 MiB",
            "config.yaml:1:29: error: private key '/dev' is not a regular file of at most 4 MiB",
        ])
    }

    func testTLSErrors() {
        let yaml = """
        tls: {cert: a.crt, client_auth: sometimes, min_version: 1.1}
        pubsub: kafka
        \(minimalHosts)
        """
        XCTAssertEqual(errors(yaml), [
            "config.yaml:1:6: error: missing required key 'key' in tls",
            "config.yaml:1:13: error: certificate '\(FileManager.default.currentDirectoryPath)/a.crt': no such file",
            "config.yaml:1:20: error: 'client_auth' needs 'client_ca' (the CA that signs client certificates)",
            "config.yaml:1:33: error: invalid value 'sometimes' for client_auth (expected one of: require, optional)",
            "config.yaml:1:57: error: invalid value '1.1' for min_version (did you mean '1.2'?)",
            "config.yaml:2:9: error: expected 'memory' or a URL like redis://127.0.0.1:6379/0 for pubsub, got 'kafka'",
        ])
    }
}

extension ServerConfigTests {
    func testBacklogAndServerHeader() throws {
        let config = try loadConfig("server: {backlog: 4096, server_header: false}\n" + minimalHosts)
        XCTAssertEqual(config.server.backlog, 4096)
        XCTAssertFalse(config.server.serverHeader)
        let defaults = try loadConfig(minimalHosts)
        XCTAssertEqual(defaults.server.backlog, 1024)
        XCTAssertTrue(defaults.server.serverHeader)
        let (_, errors) = partialConfig("server: {backlog: 0}\n" + minimalHosts)
        XCTAssertEqual(errors.count, 1, "\(errors)")
    }

    /// `user` and `group` are resolved when the file is read: ids and names from the system's
    /// databases, the user's own group by default; a name that does not exist is an error at its
    /// position (docs/operations.md, *Privileges*).
    func testUserAndGroupAreResolvedWhenTheFileIsRead() throws {
        guard let nobody = getpwnam("nobody")?.pointee else { throw XCTSkip("this system has no user 'nobody'") }
        let config = try loadConfig("server: {user: nobody}\n" + minimalHosts)
        XCTAssertEqual(config.server.runAs?.uid, nobody.pw_uid)
        XCTAssertEqual(config.server.runAs?.gid, nobody.pw_gid)
        XCTAssertEqual(config.server.runAs?.accountName, "nobody")
        XCTAssertEqual(config.server.runAs?.location?.description, "config.yaml:1:16")
        let numeric = try loadConfig("server: {user: \"\(nobody.pw_uid)\", group: \"0\"}\n" + minimalHosts)
        XCTAssertEqual(numeric.server.runAs?.uid, nobody.pw_uid)
        XCTAssertEqual(numeric.server.runAs?.gid, 0)
        XCTAssertEqual(numeric.server.runAs?.accountName, "nobody")

        XCTAssertEqual(partialConfig("server: {user: no-such-user-x}\n" + minimalHosts).1,
                       ["config.yaml:1:16: error: no user 'no-such-user-x' on this system"])
        XCTAssertEqual(partialConfig("server: {user: nobody, group: no-such-group-x}\n" + minimalHosts).1,
                       ["config.yaml:1:31: error: no group 'no-such-group-x' on this system"])
        XCTAssertEqual(partialConfig("server: {group: nobody}\n" + minimalHosts).1,
                       ["config.yaml:1:17: error: 'group' needs 'user': the user the workers run as"])
        XCTAssertEqual(partialConfig("server: {user: \"4000000001\"}\n" + minimalHosts).1,
                       ["config.yaml:1:16: error: user id 4000000001 has no entry in the user database, so it has no group of its own: set 'group' too"])
    }

    /// A unix socket's `owner` is resolved the same way; a TCP listener has no file to own.
    func testUnixSocketOwner() throws {
        guard let nobody = getpwnam("nobody")?.pointee else { throw XCTSkip("this system has no user 'nobody'") }
        let config = try loadConfig("server: {listen: [{address: \"unix:/tmp/x.sock\", owner: \"nobody:0\"}]}\n" + minimalHosts)
        XCTAssertEqual(config.server.listen.first?.socketOwner?.uid, nobody.pw_uid)
        XCTAssertEqual(config.server.listen.first?.socketOwner?.gid, 0)
        XCTAssertEqual(partialConfig("server: {listen: [{address: \"127.0.0.1:1\", owner: nobody}]}\n" + minimalHosts).1,
                       ["config.yaml:1:51: error: 'owner' applies to unix: sockets only"])
    }
}
