import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PagiConfig
import PagiCore
import NIOPosix
import Synchronization

/// `proxy` (docs/proxy.md): forwards a request to one of its upstreams and the answer back.
///
/// The upstream side is async-http-client, measured against nginx `proxy_pass` in
/// bench/results/proxy.md: it brings keep-alive pools per event loop, connect and read timeouts,
/// HTTPS upstreams verified against the system's roots, and streamed bodies with backpressure,
/// which a client of our own would have to rebuild.
///
/// - The balancer picks an upstream; a connection or protocol failure ejects it for a while and
///   an idempotent request is retried on the next — never once any byte of the answer was sent
///   (the head is the first thing sent, so: never once an upstream answered).
/// - `timeout` bounds the wait for the answer's head (504 past it) and each later read.
/// - The request goes with `X-Forwarded-For/-Proto/-Host` and `Forwarded`, the chain of a trusted
///   proxy kept and appended to, anybody else's replaced; hop-by-hop fields are removed both ways;
///   `Host` is the client's unless `headers.set` names it.
/// - An answer of known length up to `bufferedAnswer` arrives whole and goes out with its
///   `Content-Length`; a longer or open-ended one (SSE) is streamed chunk by chunk as it arrives.
public struct ProxyHandler: Handler {
    let balancer: Balancer
    let options: ProxyOptions
    /// Leading path segments removed before forwarding (`strip_prefix`).
    let strippedSegments: Int
    let client: HTTPClient
    static let logger = Logger(label: "pagi-serve.proxy")
    static let bufferedAnswer = 256 * 1024

    public init(_ options: ProxyOptions, pattern: RoutePattern) {
        balancer = Balancer(options.upstreams.compactMap(Upstream.init), balance: options.balance)
        self.options = options
        strippedSegments = options.stripPrefix ? pattern.segments.count : 0
        client = Self.client(timeout: options.timeout)
    }

    /// The client of the routes whose `timeout` is `seconds` (it is also the read timeout, which
    /// async-http-client sets per client): made on first use, kept for the life of the process,
    /// shared by those routes so that their upstream connections are pooled together.
    public static func client(timeout seconds: Double) -> HTTPClient {
        clients.withLock { clients in
            if let known = clients[seconds] { return known }
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            configuration.decompression = .disabled
            configuration.httpVersion = .http1Only
            let timeout = TimeAmount.nanoseconds(Int64(seconds * 1e9))
            configuration.timeout = .init(connect: min(timeout, .seconds(10)), read: timeout)
            // An upstream that refuses is ejected and the request goes to the next at once, rather
            // than waiting out its deadline while the client retries the connection.
            configuration.connectionPool.retryConnectionEstablishment = false
            // Per upstream; nginx opens as many as the requests need too.
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[seconds] = client
            return client
        }
    }
    private static let clients = Mutex<[Double: HTTPClient]>([:])

    public func handle(_ request: Request) -> Response {
        if request.headers["Upgrade"] != nil {
            // WebSocket through the proxy is not built yet (docs/proxy.md): say so rather than
            // forward a handshake whose answer could not be tunnelled.
            return Response(status: 501)
        }
        let forwarded = forwardedRequest(request)
        return .later { exchange in
            Task { await forward(forwarded, method: request.method, client: request.clientAddress, to: exchange) }
        }
    }

    private func forward(_ template: HTTPClientRequest, method: String, client address: String, to exchange: any Exchange) async {
        var status = 502
        let idempotent = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"].contains(method)
        for upstream in balancer.order(client: address) {
            var request = template
            request.url = upstream.origin + upstream.basePath + template.url
            upstream.inFlight.add(1, ordering: .relaxed)
            let response: HTTPClientResponse
            do {
                response = try await self.client.execute(request, timeout: .nanoseconds(Int64(options.timeout * 1e9)))
            } catch {
                upstream.inFlight.subtract(1, ordering: .relaxed)
                upstream.failed()
                let timedOut = (error as? HTTPClientError) == .deadlineExceeded || (error as? HTTPClientError) == .readTimeout
                status = timedOut ? 504 : 502
                Self.logger.error("proxy: \(method) \(upstream.origin)\(request.url.dropFirst(upstream.origin.count)) failed: \(Self.describe(error))\(idempotent ? "" : " (not retried: \(method) is not idempotent)")")
                guard idempotent else { break }
                continue
            }
            upstream.answered()
            await answer(response, upstream: upstream, isHead: method == "HEAD", to: exchange)
            return
        }
        exchange.send(Response(status: status))
    }

    /// The upstream's answer, to the client: whole when short, else streamed.
    private func answer(_ response: HTTPClientResponse, upstream: Upstream, isHead: Bool, to exchange: any Exchange) async {
        var headers = HeaderFields()
        let listed = response.headers["Connection"].joined(separator: ",")
        for field in response.headers where !Self.isHopByHop(field.name, listed: listed) {
            headers.add(field.name, field.value)
        }
        let status = Int(response.status.code)
        let length = response.headers.first(name: "Content-Length").flatMap(Int.init)
        if isHead || status == 204 || status == 304 || (length ?? .max) <= Self.bufferedAnswer {
            do {
                let body = try await response.body.collect(upTo: Self.bufferedAnswer)
                upstream.inFlight.subtract(1, ordering: .relaxed)
                exchange.send(Response(status: status, headers: headers, body: body.readableBytes == 0 ? .empty : .bytes(Array(body.readableBytesView))))
            } catch {
                upstream.inFlight.subtract(1, ordering: .relaxed)
                Self.logger.error("proxy: the answer of \(upstream.origin) broke off: \(Self.describe(error))")
                exchange.send(Response(status: 502))
            }
            return
        }
        let events = response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") ?? false
        exchange.send(Response(status: status, headers: headers, body: .stream(UpstreamBody(body: response.body, upstream: upstream, isOpenEnded: events))))
    }

    /// The request as the upstream gets it; its `url` is the path and query, the upstream's origin
    /// and base path go in front of it per attempt.
    func forwardedRequest(_ request: Request) -> HTTPClientRequest {
        var path = request.path
        if strippedSegments > 0 {
            let rest = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(1 + strippedSegments)
            path = "/" + rest.joined(separator: "/")
        }
        var forwarded = HTTPClientRequest(url: path + (request.query.map { "?" + $0 } ?? ""))
        forwarded.method = HTTPMethod(rawValue: request.method)
        var headers = HeaderFields()
        let listed = request.headers.combinedValue("Connection")
        for field in request.headers where !Self.isHopByHop(field.name, listed: listed)
            && !["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "content-length"].contains(field.name.lowercased()) {
            headers.add(field.name, field.value)
        }
        let trusted = request.context.trustedPeer
        let peer = trusted ?? request.clientAddress
        let scheme = request.context.scheme.rawValue
        let host = request.context.forwardedHost ?? request.headers["Host"] ?? request.host
        let incomingFor = trusted == nil ? nil : request.headers.combinedValue("X-Forwarded-For")
        headers.add("X-Forwarded-For", incomingFor.map { $0 + ", " + peer } ?? peer)
        headers.add("X-Forwarded-Proto", scheme)
        headers.add("X-Forwarded-Host", host)
        let node = peer.contains(":") ? "\"[\(peer)]\"" : peer
        let hop = "for=\(node);proto=\(scheme);host=\"\(host)\""
        let incomingForwarded = trusted == nil ? nil : request.headers.combinedValue("Forwarded")
        headers.add("Forwarded", incomingForwarded.map { $0 + ", " + hop } ?? hop)
        headers.apply(options.headers)
        for field in headers { forwarded.headers.add(name: field.name, value: field.value) }
        if !request.body.isEmpty { forwarded.body = .bytes(ByteBuffer(bytes: request.body)) }
        return forwarded
    }

    /// RFC 9110 §7.6.1: fields for one connection only — the fixed ones and those `Connection` names.
    static func isHopByHop(_ name: String, listed: String?) -> Bool {
        let lowered = name.lowercased()
        if ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
            "proxy-authenticate", "proxy-authorization"].contains(lowered) { return true }
        guard let listed else { return false }
        return listed.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == lowered }
    }

    static func describe(_ error: any Error) -> String {
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded: return "no answer within the timeout"
            case .readTimeout: return "nothing read within the timeout"
            case .connectTimeout: return "connect timed out"
            case .remoteConnectionClosed: return "the upstream closed the connection"
            default: break
            }
        }
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        if let connect = error as? NIOConnectionError {
            return "cannot connect (\(connect.connectionErrors.map { "\($0.error)" }.joined(separator: "; ")))"
        }
        return "\(error)"
    }
}

/// A long or open-ended answer, passed on as it arrives: each chunk the upstream sends is written
/// to the client at once (an SSE event is not held back). The upstream is read only while the
/// client keeps up: past `highWater` bytes queued for the client, reading waits until they drain.
struct UpstreamBody: BodyStream {
    let body: HTTPClientResponse.Body
    let upstream: Upstream
    /// An event stream, which a graceful shutdown may end cleanly; any other body is left to
    /// finish, since ending it early would look complete to the client.
    let isOpenEnded: Bool
    static let highWater = 1 << 20

    func start(_ sink: any BodySink) {
        let task = Task {
            defer { upstream.inFlight.subtract(1, ordering: .relaxed) }
            do {
                for try await chunk in body {
                    guard sink.write(Array(chunk.readableBytesView)) else { return }
                    while sink.pendingBytes > Self.highWater {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                sink.finish()
            } catch {
                // Cancelled: the client left, which is no upstream's fault.
                if !Task.isCancelled {
                    ProxyHandler.logger.error("proxy: the answer of \(upstream.origin) broke off: \(ProxyHandler.describe(error))")
                }
                sink.close()
            }
        }
        sink.onEnd { task.cancel() }
    }
}
