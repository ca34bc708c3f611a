import NIOCore
import PagiCore

extension ServerContext {
    /// Access log and metrics: both see every answered request as the chain left it, with the
    /// same duration. `observer`: the metrics of the table that answered (a reload may have
    /// swapped tables since). Durations are wall-clock time (timers use the loop's clock, for
    /// their tests).
    func recordAnswer(_ request: Request, status: Int, bodyBytes: Int, observer: (any RequestObserver)?,
                      started: NIODeadline) {
        guard accessLog != nil || observer != nil else { return }
        let duration = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        observer?.requestAnswered(ObservedRequest(
            host: request.context.hostName, route: request.context.routePattern, method: request.method, status: status,
            bodyBytes: bodyBytes, durationSeconds: duration))
        guard let accessLog else { return }
        accessLog.record(AccessRecord(
            clientAddress: request.clientAddress, method: request.method, target: request.target,
            proto: request.context.isHTTP2 ? "HTTP/2.0" : request.versionMinor == 0 ? "HTTP/1.0" : "HTTP/1.1", status: status, bodyBytes: bodyBytes,
            host: request.context.forwardedHost ?? request.host, referer: request.headers["Referer"],
            userAgent: request.headers["User-Agent"], durationSeconds: duration, requestID: request.context.requestID,
            user: request.context.user, scheme: request.context.scheme.rawValue, clientSubject: request.context.clientSubject))
    }
}
