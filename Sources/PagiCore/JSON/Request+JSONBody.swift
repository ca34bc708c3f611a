/// What reading a request body as JSON gave. Kept in the request's context
/// (`RequestContext.parsedJSONBody`) so that routing's `body_json` conditions and the handler
/// parse one body at most once between them.
public enum ParsedJSONBody: Sendable, Equatable {
    case json(JSONValue)
    case notJSON

    init(parsing body: [UInt8]) {
        self = JSONValue.parse(body).map(ParsedJSONBody.json) ?? .notJSON
    }

    /// The JSON value, nil for `notJSON`.
    var value: JSONValue? {
        if case .json(let value) = self { return value }
        return nil
    }
}

extension Request {
    /// The body as JSON (nil when it is not JSON), parsed at most once per request: the result is
    /// kept in `context` for whoever asks next.
    public mutating func jsonBody() -> JSONValue? {
        if let parsed = context.parsedJSONBody { return parsed.value }
        let parsed = ParsedJSONBody(parsing: body)
        context.parsedJSONBody = parsed
        return parsed.value
    }

    /// The body as JSON (nil when it is not JSON): what routing or an earlier reader kept, else
    /// parsed now, for a reader that cannot keep it (the request is not its to change).
    public var bodyJSON: JSONValue? {
        if let parsed = context.parsedJSONBody { return parsed.value }
        return JSONValue.parse(body)
    }
}
