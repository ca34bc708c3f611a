import Foundation
import PagiConfig

/// Answers ACME HTTP-01 validation requests (RFC 8555 §8.3) before any route — a site's own
/// routes, redirects or auth must not stand in the CA's way (docs/tls.md, *Automatic
/// certificates*). The ACME client publishes each pending token as a file in the storage
/// (`ACMEStorage.http01File`), so every worker process answers it, whichever process obtains the
/// certificate. A token nobody published falls through to the routes.
public struct ACMEChallengeAnswers: Sendable {
    static let prefix = "/.well-known/acme-challenge/"
    /// The `storage` directories of the configuration's ACME settings.
    let storages: [String]

    /// Nil when no host obtains its certificate by http-01.
    public init?(_ config: Config) {
        let storages = Set(config.hosts.compactMap { host in host.tls?.acme.flatMap { $0.challenge == .http01 ? $0.storage : nil } })
        guard !storages.isEmpty else { return nil }
        self.storages = storages.sorted()
    }

    /// The key authorization for a published token, as the CA expects it (`text/plain`, nothing else).
    func answer(_ request: Request) -> Response? {
        guard request.path.hasPrefix(Self.prefix), request.method == "GET" || request.method == "HEAD" else { return nil }
        let token = request.path.dropFirst(Self.prefix.count)
        for storage in storages {
            // A file of a few dozen bytes, read only for these rare requests.
            guard let file = ACMEStorage.http01File(storage: storage, token: token),
                  let keyAuthorization = FileManager.default.contents(atPath: file), keyAuthorization.count <= 1024 else { continue }
            return Response(status: 200, headers: ["Content-Type": "text/plain", "Cache-Control": "no-store"],
                            body: .bytes(Array(keyAuthorization)))
        }
        return nil
    }
}
