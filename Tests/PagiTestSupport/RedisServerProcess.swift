import Foundation
import XCTest

/// A throw-away `redis-server` on a loopback port, for tests that need a real Redis. scripts/test
/// installs redis-server; without it the tests are skipped locally and FAIL in CI (CI=true).
public final class RedisServerProcess {
    public let port: Int
    private var process: Process?

    /// Finds redis-server or explains why the test cannot run.
    public static func executable() throws -> String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("redis-server is not installed (scripts/test installs it)")
            throw XCTSkip("redis-server missing")
        }
        throw XCTSkip("redis-server is not installed (scripts/test installs it)")
    }

    public init(port: Int? = nil) throws {
        self.port = try port ?? freePort()
        try start()
    }

    /// Starts (again) on the same port: a restarted Redis keeps its address.
    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executable())
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--loglevel", "warning"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if (try? RawClient(port: port, timeout: 1)) != nil { return }
            usleep(20_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
        self.process = nil
    }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    deinit { stop() }
}

/// A port nothing listens on right now (bind to 0, read it back, close).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
