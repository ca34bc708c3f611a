import Crypto
import Foundation
import PagiConfig
import PagiCore
import Synchronization

/// `basic_auth` (RFC 7617): 401 with `WWW-Authenticate` unless the request carries a user and
/// password that match one of the configured hashes. A hash check is slow on purpose, so it runs
/// off the event loop; credentials that passed are remembered (as a keyed digest, never in clear)
/// so that a logged-in client pays for the check once, not on every request.
struct BasicAuthMiddleware: Middleware {
    private let users: [String: String]
    private let challenge: String
    private let verified: VerifiedCredentials
    /// A hash of the same kind as real ones, checked for unknown users so that the answer takes
    /// as long as for a known user with a wrong password.
    private let decoy: String?

    init(_ options: BasicAuthOptions) {
        users = options.users
        challenge = "Basic realm=\"\(options.realm)\", charset=\"UTF-8\""
        verified = VerifiedCredentials()
        decoy = options.users.values.first
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        guard let credentials = Self.credentials(request.headers["Authorization"]) else { return unauthorized() }
        let key = verified.key(for: credentials)
        if verified.contains(key) {
            request.context.user = credentials.user
            return next.respond(to: &request)
        }
        let (users, decoy, verified, challenge) = (users, decoy, verified, challenge)
        let waiting = request
        return .later { exchange in
            let accepted = HashChecks.shared.submit {
                var request = waiting
                let hash = users[credentials.user]
                let matches = PasswordHash.verify(credentials.password, hash: hash ?? decoy ?? "") && hash != nil
                guard matches else {
                    exchange.send(Response(status: 401, headers: ["WWW-Authenticate": challenge]), request: request)
                    return
                }
                verified.insert(key)
                request.context.user = credentials.user
                // The rest of the chain runs here: handlers are Sendable and thread-safe, and the
                // engine takes the answer back to the connection's event loop.
                exchange.send(next.respond(to: &request), request: request)
            }
            if !accepted {
                exchange.send(Response(status: 503, headers: ["Retry-After": "1"]), request: waiting)
            }
        }
    }

    private func unauthorized() -> Response {
        Response(status: 401, headers: ["WWW-Authenticate": challenge])
    }

    /// `Basic base64(user:password)`; nil when absent or malformed.
    static func credentials(_ header: String?) -> (user: String, password: String)? {
        guard let header, header.utf8.count <= 4096 else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, String(parts[0]).asciiCaseInsensitiveEquals("Basic"),
              let data = Data(base64Encoded: String(parts[1].trimmingOWS)),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// Where password hashes are checked: as many at once as there are cores, and a bounded queue
/// behind them, so a flood of wrong passwords costs CPU time but never memory without bound
/// (past the queue the answer is 503).
final class HashChecks: Sendable {
    static let shared = HashChecks(maxQueued: 256)
    private let queue: OperationQueue
    private let pending = Atomic<Int>(0)
    private let maxQueued: Int

    init(maxQueued: Int) {
        self.maxQueued = maxQueued
        let queue = OperationQueue()
        queue.name = "pagi-serve password checks"
        queue.maxConcurrentOperationCount = max(1, ProcessInfo.processInfo.activeProcessorCount)
        queue.qualityOfService = .userInitiated
        self.queue = queue
    }

    /// Runs `work` on the check threads; false (and nothing run) when too many wait already.
    func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        guard pending.add(1, ordering: .relaxed).newValue <= maxQueued else {
            pending.subtract(1, ordering: .relaxed)
            return false
        }
        queue.addOperation { [self] in
            work()
            pending.subtract(1, ordering: .relaxed)
        }
        return true
    }
}

/// Credentials that passed a hash check recently, as HMAC-SHA256 digests under a key made at
/// start (a memory dump shows no password). Bounded: entries expire, and the set is emptied when full.
final class VerifiedCredentials: Sendable {
    private static let capacity = 4096
    private static let lifetime: Duration = .seconds(300)
    /// Key bytes rather than a `SymmetricKey`, which is not `Sendable`.
    private let secret: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0...255) }
    private let entries = Mutex<[Data: ContinuousClock.Instant]>([:])

    func key(for credentials: (user: String, password: String)) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data((credentials.user + ":" + credentials.password).utf8),
                                             using: SymmetricKey(data: secret)))
    }

    func contains(_ key: Data) -> Bool {
        entries.withLock { entries in
            guard let expiry = entries[key] else { return false }
            if expiry > .now { return true }
            entries[key] = nil
            return false
        }
    }

    func insert(_ key: Data) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = .now + Self.lifetime
        }
    }
}
