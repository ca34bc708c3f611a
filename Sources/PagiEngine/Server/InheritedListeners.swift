#if canImport(Glibc)
import Glibc
#endif
import PagiConfig

/// A listening socket a supervisor opened and a worker process inherited (docs/operations.md,
/// *Workers*): every worker accepts from the same sockets, so a worker that stops accepting —
/// recycled, retired, killed — leaves the connections waiting in the queue to the others rather
/// than having them reset, as separate `SO_REUSEPORT` sockets would.
public struct InheritedListener: Sendable, Hashable {
    public var address: ListenConfig.Address
    /// Serves the admin table (`server.admin.listen`).
    public var admin: Bool
    public var descriptor: Int32

    public init(address: ListenConfig.Address, admin: Bool, descriptor: Int32) {
        self.address = address
        self.admin = admin
        self.descriptor = descriptor
    }

    /// The environment variable that hands them to a worker: `FD|admin|host|port` items joined by `;`.
    public static let environmentKey = "PAGI_LISTEN_FDS"

    public static func encode(_ listeners: [InheritedListener]) -> String {
        listeners.compactMap { listener in
            guard case .tcp(let host, let port) = listener.address else { return nil }
            return "\(listener.descriptor)|\(listener.admin ? 1 : 0)|\(host)|\(port)"
        }.joined(separator: ";")
    }

    /// Nil when the text is not what `encode` writes.
    public static func decode(_ text: String) -> [InheritedListener]? {
        var listeners: [InheritedListener] = []
        for item in text.split(separator: ";") {
            let parts = item.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 4, let descriptor = Int32(parts[0]), let port = Int(parts[3]) else { return nil }
            listeners.append(InheritedListener(address: .tcp(host: String(parts[2]), port: port), admin: parts[1] == "1",
                                               descriptor: descriptor))
        }
        return listeners
    }
}

/// Listening sockets made without NIO, for the supervisor to hand to its workers: NIO binds a
/// socket only inside a channel and does not give its descriptor away, so this is written by hand.
public enum ListeningSockets {
    /// A listening TCP socket on `address`. Its descriptor is at 100 or above — clear of the
    /// descriptors (3, 4, …) workers receive sockets at — and close-on-exec, so it reaches a
    /// worker only where the supervisor puts it.
    public static func open(_ address: ListenConfig.Address, backlog: Int) throws(EngineError) -> Int32 {
        guard case .tcp(let host, let port) = address else { throw EngineError("only TCP addresses are supported") }
        // `:port` = all interfaces: a dual-stack socket where IPv6 exists, else IPv4 only.
        let candidates = host.isEmpty ? ["::", "0.0.0.0"] : [host]
        var failure = EngineError("no address")
        for candidate in candidates {
            switch bind(candidate, port: port, backlog: backlog) {
            case .success(let descriptor): return descriptor
            case .failure(let reason): failure = reason
            }
        }
        throw EngineError("cannot listen on \(host.contains(":") ? "[\(host)]" : host):\(port): \(failure)")
    }

    private static func bind(_ host: String, port: Int, backlog: Int) -> Result<Int32, EngineError> {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &found)
        guard status == 0, let first = found else { return .failure(EngineError(String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(found) }
        let made = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard made >= 0 else { return .failure(lastError()) }
        var on: Int32 = 1, off: Int32 = 0
        setsockopt(made, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if first.pointee.ai_family == AF_INET6 && host == "::" {
            setsockopt(made, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        guard Glibc.bind(made, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(made, Int32(backlog)) == 0 else {
            let reason = lastError()
            close(made)
            return .failure(reason)
        }
        let moved = fcntl(made, F_DUPFD_CLOEXEC, 100)
        close(made)
        return moved >= 0 ? .success(moved) : .failure(lastError())
    }

    private static func lastError() -> EngineError { EngineError(String(cString: strerror(errno))) }
}
