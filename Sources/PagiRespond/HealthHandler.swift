import PagiCore

/// `health: true` (docs/configuration.md §9.9): `200 {"status":"ok","uptime_seconds":N}`, never cached.
public struct HealthHandler: Handler {
    /// When the first health route was compiled: the server's start, near enough, and kept across reloads.
    private static let started = ContinuousClock.now

    public init() {
        _ = Self.started
    }

    public func handle(_ request: Request) -> Response {
        let uptime = (ContinuousClock.now - Self.started).components.seconds
        return Response(status: 200, headers: ["Content-Type": "application/json", "Cache-Control": "no-store"],
                        body: .bytes(Array("{\"status\":\"ok\",\"uptime_seconds\":\(uptime)}".utf8)))
    }
}
