import PagiConfig
import XCTest

/// `tls.acme` (docs/tls.md, *Automatic certificates*): one certificate per host for the names
/// ACME can prove, files laid out in the storage, and what cannot work refused at its place.
final class ACMEConfigTests: XCTestCase {
    private let listeners = #"server: {listen: ["127.0.0.1:8080", {address: "127.0.0.1:8443", tls: true}]}"#

    func testTopLevelACMEGivesEachHostACertificateForItsNames() throws {
        let config = try loadConfig("""
            \(listeners)
            tls: {acme: {email: ops@example.com, storage: /var/lib/pagi/acme, ca_roots: /etc/ssl/certs/ca-certificates.crt}}
            hosts:
              - names: [example.com, www.example.com]
                routes: [{path: /, respond: {body: a}}]
              - names: ["*.example.org", example.org]
                routes: [{path: /, respond: {body: b}}]
              - names: ["*"]
                routes: [{path: /, respond: {body: c}}]
            """)
        XCTAssertNil(config.tls, "unknown names get the default host's certificate, not a template")
        let first = try XCTUnwrap(config.hosts[0].tls)
        XCTAssertEqual(first.acmeNames, ["example.com", "www.example.com"])
        XCTAssertEqual(first.cert, "/var/lib/pagi/acme/acme-v02.api.letsencrypt.org-directory/example.com/cert.pem")
        XCTAssertEqual(first.key, "/var/lib/pagi/acme/acme-v02.api.letsencrypt.org-directory/example.com/key.pem")
        XCTAssertEqual(first.acme?.email, "ops@example.com")
        XCTAssertEqual(first.acme?.challenge, .http01)
        XCTAssertEqual(first.acme?.directory, ACMEConfig.letsEncrypt)
        XCTAssertEqual(first.acme?.caRoots, "/etc/ssl/certs/ca-certificates.crt")
        XCTAssertEqual(config.hosts[1].tls?.acmeNames, ["example.org"])
        XCTAssertNil(config.hosts[2].tls)
        XCTAssertEqual(warningMessages(config), [
            "config.yaml:6:5: warning: ACME cannot certify '*.example.org': requests for it get another host's certificate unless this host has its own cert and key",
            "config.yaml:8:5: warning: ACME cannot certify '*': requests for it get another host's certificate unless this host has its own cert and key",
        ])
    }

    func testAHostsOwnACMEUsesItsDirectoryAndChallenge() throws {
        let config = try loadConfig("""
            server: {listen: [{address: "127.0.0.1:8443", tls: true}]}
            hosts:
              - names: [api.example.com]
                tls: {acme: {directory: "https://acme.test:14000/dir", challenge: tls-alpn-01, storage: acme}, min_version: "1.3"}
                routes: [{path: /, respond: {body: a}}]
            """, file: "/etc/pagi/config.yaml")
        let tls = try XCTUnwrap(config.hosts[0].tls)
        XCTAssertEqual(tls.cert, "/etc/pagi/acme/acme.test-14000-dir/api.example.com/cert.pem")
        XCTAssertEqual(tls.acme?.challenge, .tlsALPN01)
        XCTAssertEqual(tls.minVersion, "1.3")
        XCTAssertEqual(ACMEStorage.accountKey(try XCTUnwrap(tls.acme)), "/etc/pagi/acme/acme.test-14000-dir/account.key")
    }

    func testWhatACMECannotDoIsRefusedAtItsPlace() {
        XCTAssertEqual(errors("""
            server: {listen: [{address: "127.0.0.1:8443", tls: {acme: {storage: a}}}]}
            hosts:
              - names: ["*.example.com"]
                tls: {cert: a.crt, acme: {email: "not an address", directory: "http://acme.test/dir", challenge: dns-01}}
                routes: [{path: /, respond: {body: a}}]
              - names: [b.example.com]
                tls: {acme: {storage: a}}
                routes: [{path: /, respond: {body: b}}]
            """), [
            "config.yaml:1:53: error: 'acme' belongs to tls at the top level or on a host: a listener's own certificate would have to name every host",
            "config.yaml:4:10: error: ACME cannot certify the wildcard name '*.example.com' (http-01 and tls-alpn-01 prove control of one name): give this host cert and key",
            "config.yaml:4:11: error: tls takes either 'cert' and 'key' or 'acme', not both",
            // Named at the first `acme` that asks for http-01.
            "config.yaml:4:30: error: challenge: http-01 is answered on a plain-HTTP listener, and none is configured: add one (port 80 for a public CA) or use challenge: tls-alpn-01",
            "config.yaml:4:38: error: expected an e-mail address such as ops@example.com, got 'not an address'",
            "config.yaml:4:67: error: expected the https:// URL of an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory, got 'http://acme.test/dir'",
            "config.yaml:4:102: error: invalid value 'dns-01' for challenge (expected one of: http-01, tls-alpn-01)",
        ])
    }

    func testTheStorageNamesOnlyPlainTokensAndNames() {
        XCTAssertEqual(ACMEStorage.http01File(storage: "/s", token: "abc-_09XZ"), "/s/challenges/http-01/abc-_09XZ")
        for hostile in ["", "..", "../account.key", "a/b", "a%2f", String(repeating: "a", count: 300)] {
            XCTAssertNil(ACMEStorage.http01File(storage: "/s", token: Substring(hostile)), hostile)
        }
        XCTAssertEqual(ACMEStorage.tlsALPN01File(storage: "/s", name: "WWW.Example.com"), "/s/challenges/tls-alpn-01/www.example.com.pem")
        for hostile in ["", "../x", ".hidden", "a/b", "a_b"] {
            XCTAssertNil(ACMEStorage.tlsALPN01File(storage: "/s", name: hostile), hostile)
        }
    }
}
