import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// One ACME account at one ACME server (RFC 8555): fetches the directory, keeps anti-replay
/// nonces, signs every request with the account key and retries a `badNonce` refusal (§6.5).
/// async-http-client carries the requests: a well-kept client that verifies the server's
/// certificate against the system's roots or `ca_roots`.
actor ACMEClient {
    struct Directory {
        let newNonce: String
        let newAccount: String
        let newOrder: String
    }

    /// One answer of the ACME server.
    struct Reply {
        let status: Int
        let headers: HTTPHeaders
        let body: Data

        var location: String? { headers.first(name: "Location") }
        func json() throws -> [String: Any] {
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw ACMEError("the ACME server answered \(status) with a body that is not a JSON object")
            }
            return object
        }
    }

    private let http: HTTPClient
    private let directoryURL: String
    let key: AccountKey
    private let email: String?
    private var directory: Directory?
    private var nonces: [String] = []
    private var account: String?

    init(directory: String, key: AccountKey, email: String?, trusting roots: [NIOSSLCertificate]?) {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let roots { tls.trustRoots = .certificates(roots) }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(30)))
        configuration.redirectConfiguration = .disallow
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        directoryURL = directory
        self.key = key
        self.email = email
    }

    func shutdown() async {
        try? await http.shutdown()
    }

    /// Finds or creates the account of `key` (§7.3: the server answers the existing one for a
    /// known key), agreeing to the CA's terms as Caddy and certbot's `--agree-tos` do.
    func accountURL() async throws -> String {
        if let account { return account }
        var payload: [String: Any] = ["termsOfServiceAgreed": true]
        if let email { payload["contact"] = ["mailto:" + email] }
        let reply = try await post(try await endpoints().newAccount, payload: payload, signedWithKey: true)
        guard let url = reply.location else { throw ACMEError("the ACME server created no account (no Location)") }
        account = url
        return url
    }

    func endpoints() async throws -> Directory {
        if let directory { return directory }
        let reply = try await send(url: directoryURL, method: .GET, body: nil)
        let object = reply.status == 200 ? try? reply.json() : nil
        guard let object, let newNonce = object["newNonce"] as? String, let newAccount = object["newAccount"] as? String,
              let newOrder = object["newOrder"] as? String else {
            throw ACMEError("\(directoryURL) is not an ACME directory (status \(reply.status))")
        }
        let found = Directory(newNonce: newNonce, newAccount: newAccount, newOrder: newOrder)
        directory = found
        return found
    }

    /// A signed POST (`payload` nil: POST-as-GET) under the account; a problem document becomes
    /// an `ACMEError`.
    func post(_ url: String, payload: [String: Any]?, accept: String? = nil) async throws -> Reply {
        try await post(url, payload: payload, signedWithKey: false, accept: accept)
    }

    private func post(_ url: String, payload: [String: Any]?, signedWithKey: Bool, accept: String? = nil) async throws -> Reply {
        let data = try payload.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .withoutEscapingSlashes]) }
        let account = signedWithKey ? nil : try await accountURL()
        var attempt = 0
        while true {
            attempt += 1
            let body = try key.sign(payload: data, url: url, nonce: try await nonce(), account: account)
            let reply = try await send(url: url, method: .POST, body: body, accept: accept)
            guard reply.status >= 400 else { return reply }
            let problem = ACMEError(problem: reply, url: url)
            // §6.5: a refused nonce is retried with the fresh one the refusal carries.
            if problem.type == "urn:ietf:params:acme:error:badNonce", attempt < 5 { continue }
            throw problem
        }
    }

    private func nonce() async throws -> String {
        if let nonce = nonces.popLast() { return nonce }
        _ = try await send(url: try await endpoints().newNonce, method: .HEAD, body: nil)
        guard let nonce = nonces.popLast() else { throw ACMEError("the ACME server gave no Replay-Nonce") }
        return nonce
    }

    private func send(url: String, method: HTTPMethod, body: Data?, accept: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "pagi-serve")
        if let accept { request.headers.add(name: "Accept", value: accept) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/jose+json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(60))
        } catch {
            throw ACMEError("cannot reach the ACME server at \(url): \(error)")
        }
        // A certificate chain is a few KiB; 1 MiB bounds what a broken server can make us hold.
        let bytes = try await response.body.collect(upTo: 1 << 20)
        if let nonce = response.headers.first(name: "Replay-Nonce") { nonces.append(nonce) }
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
    }
}

/// Why obtaining a certificate failed: an ACME problem document (RFC 8555 §6.7) or a transport
/// error, said in one line for the log.
struct ACMEError: Error, CustomStringConvertible {
    let description: String
    var type: String?

    init(_ description: String) {
        self.description = description
    }

    init(problem reply: ACMEClient.Reply, url: String) {
        let object = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any]
        type = object?["type"] as? String
        let detail = object?["detail"] as? String ?? String(decoding: reply.body.prefix(200), as: UTF8.self)
        description = "the ACME server refused \(url) (\(reply.status)\(type.map { ", " + $0 } ?? "")): \(detail)"
    }
}
