import Foundation

/// systemd's readiness protocol (sd_notify(3)) for `Type=notify` units (docs/deployment.md): once
/// serving, `READY=1`; a hot upgrade's successor also names itself the main process (`MAINPID=`,
/// which needs `NotifyAccess=all`), so that systemd follows it when the old process exits instead
/// of taking the service for stopped. Hand-written: one datagram to `$NOTIFY_SOCKET`, and
/// libsystemd is not otherwise needed.
enum SystemdNotify {
    /// Tells systemd this process serves (as the successor of another one, when `replacing`).
    static func ready(replacing predecessor: pid_t?) {
        send(predecessor == nil ? "READY=1" : "MAINPID=\(getpid())\nREADY=1")
    }

    private static func send(_ state: String) {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        // "@name": an abstract socket, whose name starts with a NUL byte.
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let message = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                message.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, target, length) }
            }
        }
    }
}
