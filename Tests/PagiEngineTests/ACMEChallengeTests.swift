import Foundation
import NIOCore
import PagiTestSupport
import XCTest

@testable import PagiEngine

/// The engine's side of ACME (docs/tls.md, *Automatic certificates*): HTTP-01 tokens published
/// in the storage are answered before any route, and a client hello is read for the
/// `acme-tls/1` protocol of TLS-ALPN-01. The whole exchange with a CA: ACMETests (Pebble).
final class ACMEChallengeTests: XCTestCase {
    func testHTTP01TokensInTheStorageAreAnsweredBeforeAnyRoute() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try TestServer(yaml: """
            server: {listen: ["127.0.0.1:0"]}
            tls: {acme: {storage: "{{dir}}/acme"}}
            hosts:
              - names: [site.test]
                routes:
                  - {path: /.well-known/, respond: {status: 418, body: route}}
            """, directory: dir)
        defer { server.stop() }
        try writeFile(dir, "acme/challenges/http-01/tok-EN_1", "tok-EN_1.thumbprint")
        try writeFile(dir, "acme/secret", "not for the CA")
        let answer = try XCTUnwrap(RawClient.get(port: server.port, "/.well-known/acme-challenge/tok-EN_1", headers: ["Host": "site.test"]))
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.text, "tok-EN_1.thumbprint")
        XCTAssertEqual(answer.header("Content-Type"), "text/plain")
        XCTAssertEqual(RawClient.get(port: server.port, "/.well-known/acme-challenge/tok-EN_1", method: "HEAD")?.status, 200)
        // Tokens nobody published, other methods and anything that is not a token go to the routes.
        for (path, method) in [("/.well-known/acme-challenge/other", "GET"), ("/.well-known/acme-challenge/tok-EN_1", "POST"),
                               ("/.well-known/acme-challenge/..%2Fsecret", "GET"), ("/.well-known/acme-challenge/", "GET")] {
            let routed = RawClient.get(port: server.port, path, method: method)
            XCTAssertEqual(routed?.status, 418, "\(method) \(path)")
            XCTAssertFalse(routed?.text.contains("not for the CA") ?? true)
        }
    }

    func testClientHellosAreReadForTheACMEProtocol() throws {
        // openssl s_client -servername site.test -alpn acme-tls/1, as sent.
        let hello = try XCTUnwrap(ByteBuffer(hex:
            "160301014701000143030311a62769912e339e8d2aea9d9f149f8af7b19568d280ce2b97cacd8b00170e51201c1e26fe41221443c5972a6373e6a46f" +
            "2704dcfe1db20f5b2b36b50f27bb322e003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039" +
            "c009c0130033009d009c003d003c0035002f00ff010000bc0000000e000c000009736974652e74657374000b000403000102000a00160014001d0017" +
            "001e0019001801000101010201030104002300000010000d000b0a61636d652d746c732f310016000000170000000d002a0028040305030603080708" +
            "080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d0020" +
            "bc6618293eb1e2f2c25c46669e2d307840d5bd94acf434e188d1b6654333921f"
        ))
        XCTAssertTrue(ClientHelloALPN.offers("acme-tls/1", in: hello))
        XCTAssertFalse(ClientHelloALPN.offers("h2", in: hello))
        // Cut anywhere, or not a hello at all: never offered, never a crash.
        for length in [0, 1, 5, 9, 43, 100, hello.readableBytes - 1] {
            XCTAssertFalse(ClientHelloALPN.offers("acme-tls/1", in: hello.getSlice(at: 0, length: length) ?? ByteBuffer()), "\(length)")
        }
        XCTAssertFalse(ClientHelloALPN.offers("acme-tls/1", in: ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")))
    }
}

private extension ByteBuffer {
    init?(hex: String) {
        var bytes: [UInt8] = []
        var digits = hex.makeIterator()
        while let high = digits.next(), let low = digits.next() {
            guard let byte = UInt8(String([high, low]), radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.init(bytes: bytes)
    }
}
