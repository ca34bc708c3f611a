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

    /// The environment variable that hands them to a worker: `FD|admin|address` items joined by
    /// `;`, the address written as in the config (the loader refuses unix paths holding `;` or `|`).
    public static let environmentKey = "PAGI_LISTEN_FDS"

    /// The same listener on a close-on-exec copy of its socket (`ListeningSockets.copyHigh`); nil
    /// when the socket cannot be copied.
    public func copied() -> InheritedListener? {
        let copy = ListeningSockets.copyHigh(descriptor)
        return copy < 0 ? nil : InheritedListener(address: address, admin: admin, descriptor: copy)
    }

    public static func encode(_ listeners: [InheritedListener]) -> String {
        listeners.map { "\($0.descriptor)|\($0.admin ? 1 : 0)|\(ListeningSockets.describe($0.address))" }.joined(separator: ";")
    }

    /// Nil when the text is not what `encode` writes.
    public static func decode(_ text: String) -> [InheritedListener]? {
        var listeners: [InheritedListener] = []
        for item in text.split(separator: ";") {
            let parts = item.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let descriptor = Int32(parts[0]), let address = ListenAddress.parse(String(parts[2])) else {
                return nil
            }
            listeners.append(InheritedListener(address: address, admin: parts[1] == "1", descriptor: descriptor))
        }
        return listeners
    }
}

/// Listening sockets made without NIO, for the supervisor to hand to its workers: NIO binds a
/// socket only inside a channel and does not give its descriptor away, so this is written by hand.
public enum ListeningSockets {
    /// A listening socket for `listener` (TCP, or a unix socket file with its `mode` and `owner`).
    /// Its descriptor is at 100 or above — clear of the descriptors (3, 4, …) workers receive
    /// sockets at — and close-on-exec, so it reaches a worker only where the supervisor puts it.
    public static func open(_ listener: ListenConfig, backlog: Int) throws(EngineError) -> Int32 {
        let address = listener.address
        let made: Result<Int32, EngineError>
        switch address {
        case .unix(let path):
            try claimUnixPath(path)
            made = bindUnix(path, backlog: backlog).flatMap { descriptor in
                do throws(EngineError) {
                    try applyFileSettings(path, of: listener)
                    return .success(descriptor)
                } catch {
                    close(descriptor)
                    unlink(path)
                    return .failure(error)
                }
            }
        case .tcp(let host, let port):
            // `:port` = all interfaces: a dual-stack socket where IPv6 exists, else IPv4 only.
            var attempt = Result<Int32, EngineError>.failure(EngineError("no address"))
            for candidate in host.isEmpty ? ["::", "0.0.0.0"] : [host] {
                attempt = bindTCP(candidate, port: port, backlog: backlog)
                if case .success = attempt { break }
            }
            made = attempt
        }
        switch made {
        case .success(let descriptor): return descriptor
        case .failure(let reason): throw EngineError("cannot listen on \(describe(address)): \(reason)")
        }
    }

    /// How the log names a listener: `http://host:port`, or `unix:/path`.
    public static func logName(_ address: ListenConfig.Address) -> String {
        if case .unix = address { return describe(address) }
        return "http://" + describe(address)
    }

    /// An address as the config writes it: `host:port`, `[v6]:port`, `:port`, `unix:/path`.
    public static func describe(_ address: ListenConfig.Address) -> String {
        switch address {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    /// Before a unix socket is bound at `path`: a socket file no server answers on any more (left
    /// by a crash) is removed; one a live server still answers on, or a file that is not a socket,
    /// is refused — what is not ours is never deleted.
    public static func claimUnixPath(_ path: String) throws(EngineError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw EngineError("cannot listen on unix:\(path): the file exists and is not a socket")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw EngineError("cannot listen on unix:\(path): \(lastError())") }
        let answered = withUnixAddress(path) { connect(probe, $0, $1) } == 0
        close(probe)
        if answered { throw EngineError("cannot listen on unix:\(path): another server is listening on it") }
        unlink(path)
    }

    /// Removes the socket file at `path`, if a socket is what is there (on exit; when a reload drops it).
    public static func releaseUnixPath(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
    }

    /// The permissions and owner a unix socket file's listener asks for (`mode`, `owner`).
    public static func applyFileSettings(_ path: String, of listener: ListenConfig) throws(EngineError) {
        if let mode = listener.socketMode, chmod(path, mode_t(mode)) != 0 {
            throw EngineError("cannot set the mode of \(path): \(lastError())")
        }
        if let owner = listener.socketOwner, chown(path, owner.uid, owner.gid) != 0 {
            throw EngineError("cannot give \(path) to \(owner.user): \(lastError())")
        }
    }

    private static func bindUnix(_ path: String, backlog: Int) -> Result<Int32, EngineError> {
        let made = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard made >= 0 else { return .failure(lastError()) }
        guard withUnixAddress(path, { Glibc.bind(made, $0, $1) }) == 0, listen(made, Int32(backlog)) == 0 else {
            let reason = lastError()
            close(made)
            return .failure(reason)
        }
        return moved(made)
    }

    private static func bindTCP(_ host: String, port: Int, backlog: Int) -> Result<Int32, EngineError> {
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
        return moved(made)
    }

    /// The socket moved to a descriptor of 100 or above.
    private static func moved(_ descriptor: Int32) -> Result<Int32, EngineError> {
        let moved = copyHigh(descriptor)
        close(descriptor)
        return moved >= 0 ? .success(moved) : .failure(lastError())
    }

    /// A close-on-exec copy of `descriptor` at 100 or above — out of the way of the descriptors
    /// (3, 4, …) a started process receives sockets at — or, under a descriptor limit lower than
    /// that, wherever it fits; -1 when it cannot be copied.
    public static func copyHigh(_ descriptor: Int32) -> Int32 {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 100)
        return copy >= 0 || errno != EINVAL ? copy : fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
    }

    /// `path` as a `sockaddr_un` (the loader keeps paths within its 107 bytes).
    private static func withUnixAddress<Result>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    private static func lastError() -> EngineError { EngineError(String(cString: strerror(errno))) }
}
