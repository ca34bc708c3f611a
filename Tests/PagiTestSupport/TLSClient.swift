import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// A blocking TLS client for tests (NIOSSL underneath): one connection, requests sent as exact
/// bytes, responses parsed as `RawClient` parses them, and the certificate the server offered.
public final class TLSClient: @unchecked Sendable {
    // @unchecked: `received` and `closed` are guarded by `condition`.
    private let channel: any Channel
    private let condition = NSCondition()
    private var received: [UInt8] = []
    private var closed = false
    private var buffer: [UInt8] = []
    private let timeout: TimeInterval

    public struct Options {
        /// Sent as SNI and, with `verify`, checked against the certificate.
        public var serverName: String?
        /// The CA the server's certificate must chain to; nil = accept any certificate.
        public var trusting: String?
        public var verifyName = true
        public var maximumVersion: TLSVersion?
        public var clientCertificate: (cert: String, key: String)?
        public init(serverName: String? = nil, trusting: String? = nil) {
            self.serverName = serverName
            self.trusting = trusting
        }
    }

    /// Connects and completes the handshake; throws when the handshake fails.
    public init(port: Int, _ options: Options, timeout: TimeInterval = 5) throws {
        self.timeout = timeout
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let ca = options.trusting {
            configuration.trustRoots = .file(ca)
            configuration.certificateVerification = options.verifyName ? .fullVerification : .noHostnameVerification
        } else {
            configuration.certificateVerification = .none
        }
        if let maximum = options.maximumVersion { configuration.maximumTLSVersion = maximum }
        if let client = options.clientCertificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(client.cert).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: client.key, format: .pem))
        }
        let context = try NIOSSLContext(configuration: configuration)
        let handshake = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
        let collector = Collector(handshake: handshake)
        let serverName = options.serverName
        do {
            channel = try ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(Int64(timeout)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: "127.0.0.1", port: port).wait()
        } catch {
            // Nothing listens (yet): the handshake never starts, and a promise must not be left open.
            handshake.fail(error)
            throw error
        }
        collector.client = self
        try handshake.futureResult.wait()
    }

    deinit { channel.close(promise: nil) }

    /// The certificate the server presented.
    public func peerCertificate() throws -> NIOSSLCertificate? {
        try channel.nioSSL_peerCertificate().wait()
    }

    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    public func send(_ bytes: [UInt8]) throws {
        try channel.writeAndFlush(ByteBuffer(bytes: bytes)).wait()
    }

    /// One response; nil when the connection ended or timed out first.
    public func readResponse(head: Bool = false) -> RawResponse? {
        RawResponse.read(from: &buffer, head: head) { next() }
    }

    /// Reads until `marker` has arrived and returns everything up to and including it (what came
    /// after stays for the next read); nil on close or timeout first. For what is not one HTTP
    /// response: a 101's head, frames, events.
    public func read(through marker: [UInt8]) -> [UInt8]? {
        while true {
            if let end = buffer.firstRange(of: marker)?.upperBound {
                defer { buffer.removeFirst(end) }
                return Array(buffer[..<end])
            }
            guard let more = next() else { return nil }
            buffer += more
        }
    }

    /// Exactly `count` bytes; nil on close or timeout first.
    public func read(count: Int) -> [UInt8]? {
        while buffer.count < count {
            guard let more = next() else { return nil }
            buffer += more
        }
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }

    /// The bytes received since the last call, waiting for some; nil on close or timeout.
    private func next() -> [UInt8]? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while received.isEmpty && !closed {
            guard condition.wait(until: deadline) else { return nil }
        }
        guard !received.isEmpty else { return nil }
        defer { received = [] }
        return received
    }

    /// One request on a new connection (`Connection: close`), `Host` = the server name or localhost.
    public static func get(port: Int, _ path: String, _ options: Options, headers: [String: String] = [:]) throws -> RawResponse? {
        let client = try TLSClient(port: port, options)
        var request = "GET \(path) HTTP/1.1\r\nHost: \(options.serverName ?? "localhost")\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        try client.send(request + "\r\n")
        return client.readResponse()
    }

    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        weak var client: TLSClient?
        private let handshake: EventLoopPromise<Void>

        init(handshake: EventLoopPromise<Void>) {
            self.handshake = handshake
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent { handshake.succeed() }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            guard let client, let chunk = bytes.readBytes(length: bytes.readableBytes) else { return }
            client.condition.lock()
            client.received += chunk
            client.condition.broadcast()
            client.condition.unlock()
        }

        func channelInactive(context: ChannelHandlerContext) {
            handshake.fail(ChannelError.ioOnClosedChannel)
            guard let client else { return }
            client.condition.lock()
            client.closed = true
            client.condition.broadcast()
            client.condition.unlock()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            handshake.fail(error)
            context.close(promise: nil)
        }
    }
}

/// A throw-away certificate authority (the system's `openssl`), issuing certificates for test
/// names: what a real deployment's CA does, in a scratch directory.
public struct TestCertificateAuthority {
    public let directory: URL
    public var certificate: String { directory.appendingPathComponent("ca.crt").path }

    public init(in directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                          "-subj", "/CN=pagi-serve test CA", "-keyout", "ca.key", "-out", "ca.crt"], in: directory)
    }

    /// A certificate for `names` (the first is the common name) and its key, mode 0600;
    /// `file` names the pair (`file.crt`, `file.key`).
    @discardableResult
    public func issue(_ names: [String], as file: String) throws -> (cert: String, key: String) {
        let extensions = directory.appendingPathComponent("\(file).ext")
        try ("subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ",") + "\n").write(to: extensions, atomically: true, encoding: .utf8)
        try Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=\(names[0])",
                          "-keyout", "\(file).key", "-out", "\(file).csr"], in: directory)
        try Self.openssl(["x509", "-req", "-in", "\(file).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                          "-extfile", "\(file).ext", "-out", "\(file).crt"], in: directory)
        let key = directory.appendingPathComponent("\(file).key").path
        chmod(key, 0o600)
        return (directory.appendingPathComponent("\(file).crt").path, key)
    }

    private static func openssl(_ arguments: [String], in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}
