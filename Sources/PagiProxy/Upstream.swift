import Foundation
import NIOSSL
import PagiConfig
import Synchronization

/// One upstream of a `proxy` route (docs/proxy.md) and what the balancer knows of it: requests in
/// flight (`least_conn`, counted across every thread) and whether it failed lately. A failed
/// connection or answer ejects it for `ejection` seconds, as nginx's `max_fails=1 fail_timeout=10s`
/// does by default: the next requests go to the others, and after that it is tried again.
final class Upstream: Sendable {
    /// `scheme://host:port`, no path: names it in the log and in its loop's pool.
    let origin: String
    let host: String
    let port: Int
    /// The path of the URL, without a trailing `/` ("" for none): prefixed to every request's path.
    let basePath: String
    /// For an `https://` upstream: verified against the system's roots or the route's `ca`, by
    /// name (SNI too) unless it is an address.
    let tls: NIOSSLContext?
    var serverName: String? { host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host }
    let inFlight = Atomic<Int>(0)
    private let ejectedUntil = Mutex<Date>(.distantPast)
    static let ejection: TimeInterval = 10
    /// What the active health checks say (`HealthChecks`); true without them.
    let healthy = Atomic<Bool>(true)

    /// `tls`: the route's client context, for an `https://` URL.
    init?(_ text: String, tls: NIOSSLContext?) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host else { return nil }
        let hostText = host.contains(":") ? "[\(host)]" : host
        self.host = host
        port = url.port ?? (scheme == "https" ? 443 : 80)
        origin = "\(scheme)://\(hostText)" + (url.port.map { ":\($0)" } ?? "")
        let path = url.path
        basePath = path.hasSuffix("/") ? String(path.dropLast()) : path
        if scheme == "https" {
            guard let tls else { return nil }
            self.tls = tls
        } else {
            self.tls = nil
        }
    }

    var isAvailable: Bool { healthy.load(ordering: .relaxed) && ejectedUntil.withLock { $0 } <= Date() }

    func failed() { ejectedUntil.withLock { $0 = Date().addingTimeInterval(Self.ejection) } }
    func answered() { ejectedUntil.withLock { $0 = .distantPast } }
}

/// Chooses the order in which a request tries the upstreams (`balance`): the first is the
/// balancer's pick, the others are where an idempotent request is retried. Ejected upstreams go
/// last rather than away: when every upstream failed lately, one is still tried.
final class Balancer: Sendable {
    let upstreams: [Upstream]
    let balance: ProxyOptions.Balance
    private let turn = Atomic<Int>(0)

    init(_ upstreams: [Upstream], balance: ProxyOptions.Balance) {
        self.upstreams = upstreams
        self.balance = balance
    }

    func order(client: String) -> [Upstream] {
        let count = upstreams.count
        // No usable upstream (an `https://` one whose TLS context could not be made): 502, not a
        // division by zero.
        guard count > 0 else { return [] }
        let first: Int
        switch balance {
        case .roundRobin: first = turn.add(1, ordering: .relaxed).oldValue % count
        case .random: first = Int.random(in: 0..<count)
        case .ipHash: first = Int(Self.fnv1a(client) % UInt64(count))
        case .leastConn:
            // The fewest requests in flight; ties broken in turn, so an idle pool is still spread.
            let start = turn.add(1, ordering: .relaxed).oldValue % count
            let rotated = (0..<count).map { (start + $0) % count }
            first = rotated.min { upstreams[$0].inFlight.load(ordering: .relaxed) < upstreams[$1].inFlight.load(ordering: .relaxed) } ?? start
        }
        let ordered = (0..<count).map { upstreams[(first + $0) % count] }
        return ordered.filter(\.isAvailable) + ordered.filter { !$0.isAvailable }
    }

    /// A stable hash of the client address (FNV-1a): the same client, the same upstream.
    private static func fnv1a(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
