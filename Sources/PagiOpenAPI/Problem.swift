import PagiCore

/// RFC 9457 problem documents (`application/problem+json`) for requests the stub refuses.
enum Problem {
    static func response(status: Int, title: String, detail: String, instance: String,
                         extra: [(key: String, value: JSONValue)] = []) -> Response {
        let document = JSONValue.object([
            ("type", .string("about:blank")), ("title", .string(title)), ("status", .integer(status)),
            ("detail", .string(detail)), ("instance", .string(instance)),
        ] + extra)
        return Response(status: status, headers: ["Content-Type": "application/problem+json"], body: .bytes(Array(document.text.utf8)))
    }

    /// 400 listing every violation; `detail` spells out the first one.
    static func invalidRequest(_ violations: [Violation], operation: StubOperation, instance: String) -> Response {
        let first = violations[0]
        let more = violations.count > 1 ? " (and \(violations.count - 1) more)" : ""
        var extra: [(key: String, value: JSONValue)] = [("violations", .array(violations.map { violation in
            .object([("in", .string(violation.location)), ("name", .string(violation.name)),
                     ("expected", .string(violation.expected)), ("got", .string(violation.got))])
        }))]
        if let operationId = operation.operationId { extra.insert(("operationId", .string(operationId)), at: 0) }
        return response(status: 400, title: "Request does not match the API description",
                        detail: describe(first) + more, instance: instance, extra: extra)
    }

    private static func describe(_ violation: Violation) -> String {
        let place = switch violation.location {
        case "body": violation.name.isEmpty ? "request body" : "body property '\(violation.name)'"
        default: "\(violation.location) parameter '\(violation.name)'"
        }
        return "\(place): expected \(violation.expected), got \(violation.got)"
    }
}
