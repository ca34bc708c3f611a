import PagiConfig
import PagiCore
import Synchronization

/// `rate_limit`: a token bucket per key (client address or a header's value). A request takes a
/// token; with none left the answer is 429 with `Retry-After`. Buckets live in shards, each behind
/// its own lock, so threads rarely wait on each other; each shard holds a bounded number of keys.
struct RateLimitMiddleware: Middleware {
    private let key: RateLimitOptions.Key
    private let buckets: TokenBuckets

    init(_ options: RateLimitOptions) {
        key = options.key
        buckets = TokenBuckets(perSecond: options.perSecond, burst: options.burst)
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        let name: String = switch key {
        case .clientIP: request.clientAddress
        case .header(let header): request.headers[header] ?? ""
        }
        if let wait = buckets.take(name, now: .now) {
            // A very slow rate (1/h written as 0.000001/h) could ask for more seconds than an Int
            // holds: a day is as far ahead as a client should plan anyway.
            return Response(status: 429, headers: ["Retry-After": String(Int(min(max(1, wait), 86_400).rounded(.up)))])
        }
        return next.respond(to: &request)
    }
}

/// Token buckets by key. A bucket that has refilled completely is the same as no bucket, so it
/// may be dropped at any time: that is how memory stays bounded under a flood of distinct keys.
final class TokenBuckets: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    static let shardCount = 16
    private let perSecond: Double
    private let burst: Double
    let keysPerShard: Int
    private let shards: [Shard]

    final class Shard: Sendable {
        let buckets = Mutex<[String: Bucket]>([:])
    }

    init(perSecond: Double, burst: Int, keysPerShard: Int = 4096) {
        self.perSecond = perSecond
        self.burst = Double(burst)
        self.keysPerShard = keysPerShard
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// Takes a token for `key`: nil when there was one, else the seconds until there will be.
    func take(_ key: String, now: ContinuousClock.Instant) -> Double? {
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(Self.shardCount))]
        return shard.buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + seconds(from: bucket.updated, to: now) * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return (1 - bucket.tokens) / perSecond
            }
            bucket.tokens -= 1
            if buckets[key] == nil && buckets.count >= keysPerShard { makeRoom(in: &buckets, now: now) }
            buckets[key] = bucket
            return nil
        }
    }

    /// Drops every bucket that has refilled by now; if too few have, the least recently used
    /// quarter, so a new client is never refused for want of room and a flood of new keys pays
    /// for a full sweep only once every quarter of the shard.
    private func makeRoom(in buckets: inout [String: Bucket], now: ContinuousClock.Instant) {
        buckets = buckets.filter { $0.value.tokens + seconds(from: $0.value.updated, to: now) * perSecond < burst }
        guard buckets.count > keysPerShard * 3 / 4 else { return }
        let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(buckets.count - keysPerShard * 3 / 4)
        for (key, _) in oldest { buckets[key] = nil }
    }

    var count: Int { shards.reduce(0) { $0 + $1.buckets.withLock { $0.count } } }

    private func seconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Double {
        let (seconds, attoseconds) = (end - start).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
