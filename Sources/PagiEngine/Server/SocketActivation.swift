#if canImport(Glibc)
import Glibc
#endif
import PagiConfig

/// systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`, as sd_listen_fds(3) reads them;
/// docs/operations.md, *Socket activation*): the listening sockets arrive already bound at
/// descriptors 3, 4, …, and each is matched to the configuration's listener with the same address —
/// so a restart never leaves a moment without a listening socket, and ports below 1024 need no
/// privileges. Hand-written: sd_listen_fds is a few lines and libsystemd is not otherwise needed.
public enum SocketActivation {
    /// The sockets passed to this process, matched to the listeners of `config`; nil when none
    /// were passed (or they were meant for another process: `LISTEN_PID`). A socket that matches no
    /// listener, or a listener with no socket, is an error: serving a different set than the file
    /// says would surprise more than refusing to start.
    public static func listeners(for config: Config, environment: [String: String]) throws(EngineError) -> [InheritedListener]? {
        guard let count = environment["LISTEN_FDS"].flatMap(Int32.init), count > 0,
              environment["LISTEN_PID"].flatMap(Int32.init) == getpid() else { return nil }
        var wanted: [(ListenConfig.Address, Bool)] = config.server.listen.filter { !$0.tls }.map { ($0.address, false) }
        if let admin = config.server.adminListen { wanted.append((admin.address, true)) }
        var matched: [InheritedListener] = []
        for descriptor in Int32(3)..<(3 + count) {
            guard let address = boundAddress(descriptor) else {
                throw EngineError("socket activation: descriptor \(descriptor) is not a listening socket")
            }
            guard let index = wanted.firstIndex(where: { same($0.0, address) }) else {
                throw EngineError("socket activation passed \(ListeningSockets.describe(address)), which the configuration does not listen on")
            }
            // Moved out of the way of the descriptors workers receive sockets at, and close-on-exec.
            let moved = ListeningSockets.copyHigh(descriptor)
            guard moved >= 0 else { throw EngineError("socket activation: cannot take descriptor \(descriptor)") }
            close(descriptor)
            matched.append(InheritedListener(address: wanted[index].0, admin: wanted[index].1, descriptor: moved))
            wanted.remove(at: index)
        }
        if let missing = wanted.first {
            throw EngineError("socket activation passed no socket for \(ListeningSockets.describe(missing.0)) (add it to the .socket unit, or drop it from listen)")
        }
        return matched
    }

    /// `:port` (every interface) is the wildcard address of either family; host names are not
    /// resolved: socket-activated listeners are written as addresses.
    private static func same(_ configured: ListenConfig.Address, _ bound: ListenConfig.Address) -> Bool {
        switch (configured, bound) {
        case (.tcp("", let port), .tcp(let host, let boundPort)): return port == boundPort && (host == "::" || host == "0.0.0.0")
        default: return configured == bound
        }
    }

    /// The address a listening socket is bound to.
    private static func boundAddress(_ descriptor: Int32) -> ListenConfig.Address? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    text(of: address.pointee.sin_addr, family: AF_INET).map { .tcp(host: $0, port: Int(UInt16(bigEndian: address.pointee.sin_port))) }
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    text(of: address.pointee.sin6_addr, family: AF_INET6).map { .tcp(host: $0, port: Int(UInt16(bigEndian: address.pointee.sin6_port))) }
                }
            }
        case AF_UNIX:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { address in
                    withUnsafeBytes(of: address.pointee.sun_path) { raw in
                        let bytes = raw.prefix { $0 != 0 }
                        return bytes.isEmpty ? nil : .unix(path: String(decoding: bytes, as: UTF8.self))
                    }
                }
            }
        default:
            return nil
        }
    }

    /// An `in_addr` or `in6_addr` as text.
    private static func text<Address>(of address: Address, family: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = withUnsafeBytes(of: address) { raw in
            raw.baseAddress.map { inet_ntop(family, $0, &buffer, socklen_t(buffer.count)) != nil } ?? false
        }
        guard written else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
