import NIOCore

/// Where an HTTP/1.1 connection stands between its requests (docs/architecture.md): whether the
/// next pipelined request may be read, whether the connection persists, and what happens once a
/// response has left. Plain data: `HTTPConnectionHandler` carries out what it says, and the
/// rules are tested without a channel.
struct ConnectionState {
    /// The current request lets the connection persist (RFC 9112 §9.3).
    private(set) var keepAlive = true
    /// The connection must not start another request (error, `Connection: close`, shutdown, fault).
    private(set) var closing = false
    /// A protocol error was answered: the connection only lingers until it closes.
    private(set) var failed = false
    /// Responses handed to the socket and not yet completely written.
    private(set) var responsesInFlight = 0
    /// A response comes later (`Response.later`): nothing further is read until it is sent, so
    /// pipelined responses stay in order.
    var awaitingResponse = false
    /// A streamed body (SSE, throttled) is being written: what is pipelined behind it waits too.
    var streaming = false
    /// A request arrived on this connection (it is not one just accepted).
    private(set) var servedAny = false
    /// A graceful shutdown began: a first request is still answered, but no second one.
    private var quiesced = false
    /// The server is shutting down: a stream or protocol started from now on must end at once.
    var isQuiesced: Bool { quiesced }

    /// Whether the next request may be parsed now.
    var mayParse: Bool { !awaitingResponse && !streaming }

    /// Whether the response now being sent leaves the connection open.
    var staysOpen: Bool { keepAlive && !closing }

    /// Whether input still matters: a closing connection reads only the rest of the request it serves.
    func wantsInput(requestInProgress: Bool) -> Bool { !closing || requestInProgress }

    /// A request head arrived; `persistent` is what its version and `Connection` field ask for.
    mutating func requestStarted(persistent: Bool) {
        keepAlive = persistent && !closing && !quiesced
        servedAny = true
    }

    /// The request is complete and about to be answered.
    mutating func requestFinished() {
        if !keepAlive { closing = true }
    }

    /// No request after the one being answered (an HTTP/1.0 stream ends with the close, a fault,
    /// a stream that had to be cut).
    mutating func close() {
        keepAlive = false
        closing = true
    }

    /// A protocol error is answered; nothing after it is read.
    mutating func fail() {
        close()
        failed = true
    }

    mutating func responseSent() {
        responsesInFlight += 1
    }

    enum AfterResponse: Equatable {
        /// Another response is still going out, or a request is being received or answered.
        case nothing
        /// Send FIN and drain what the client still sends (after an error answer).
        case lingerAndClose
        case close
        /// Keep the connection: wait for the next request, with the head timeout when part of
        /// it is already buffered, else the idle timeout.
        case awaitNextRequest
    }

    /// A response was completely handed to the socket.
    mutating func responseDone(requestInProgress: Bool) -> AfterResponse {
        responsesInFlight -= 1
        guard responsesInFlight == 0, !requestInProgress, !awaitingResponse else { return .nothing }
        if failed { return .lingerAndClose }
        return closing ? .close : .awaitNextRequest
    }

    enum OnQuiesce: Equatable {
        /// Nothing is under way: close now.
        case closeNow
        /// Finish what is under way (an open-ended stream is ended), then close.
        case drain
        /// A connection accepted just before the shutdown, whose first request may be on its
        /// way: wait for it a moment, answer it, then close. A client retries a request on a
        /// kept-alive connection that closes, but not the first one of a new connection.
        case awaitFirstRequest
    }

    /// Graceful shutdown: no new request; what is under way finishes.
    mutating func quiesce(requestInProgress: Bool) -> OnQuiesce {
        close()
        quiesced = true
        guard !requestInProgress && responsesInFlight == 0 && !awaitingResponse else { return .drain }
        if !servedAny {
            // The first request is still welcome (answered with `Connection: close`).
            closing = false
            return .awaitFirstRequest
        }
        return .closeNow
    }

    /// Persistence (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `keep-alive`.
    static func persists(versionMinor: Int, headers: [(name: String, value: String)]) -> Bool {
        var close = false
        var keepAlive = false
        for field in headers where field.name.asciiCaseInsensitiveEquals("connection") {
            for token in field.value.split(separator: ",") {
                let option = token.trimmingOWS
                if option.asciiCaseInsensitiveEquals("close") { close = true }
                if option.asciiCaseInsensitiveEquals("keep-alive") { keepAlive = true }
            }
        }
        return versionMinor >= 1 ? !close : keepAlive && !close
    }
}

/// The deadline of waiting for a request head — idle keep-alive (closed quietly) or a partial
/// head (answered 408) — kept apart from the timer task that enforces it: one task serves many
/// requests, since re-arming only moves the deadline and a task that fires early is re-armed for
/// the deadline it finds. That saves a timer-heap insert and removal on every request.
struct HeadWait {
    private(set) var deadline: NIODeadline?
    private(set) var answers408 = false
    /// When the scheduled task fires, if there is one.
    private var taskFiresAt: NIODeadline?

    /// Waiting for a connection's next request, not for the rest of a partial head.
    var isIdleWait: Bool { deadline != nil && !answers408 }

    /// Sets the deadline; true when a task must be (re)scheduled for it — the one scheduled fires
    /// later, or there is none.
    mutating func arm(at deadline: NIODeadline, answer408: Bool) -> Bool {
        self.deadline = deadline
        answers408 = answer408
        if let firesAt = taskFiresAt, firesAt <= deadline { return false }
        taskFiresAt = deadline
        return true
    }

    /// No deadline; a scheduled task finds none when it fires.
    mutating func disarm() {
        deadline = nil
        answers408 = false
    }

    /// The task is cancelled or gone.
    mutating func taskCancelled() {
        disarm()
        taskFiresAt = nil
    }

    enum Fired: Equatable {
        case disarmed
        /// Re-armed later meanwhile: schedule the task again for this deadline.
        case early(NIODeadline)
        /// The wait is over: answer 408 (a partial head) or close quietly.
        case expired(answer408: Bool)
    }

    /// The task fired at `now`.
    mutating func fired(now: NIODeadline) -> Fired {
        taskFiresAt = nil
        guard let deadline else { return .disarmed }
        if deadline > now {
            taskFiresAt = deadline
            return .early(deadline)
        }
        let answer408 = answers408
        disarm()
        return .expired(answer408: answer408)
    }
}
