import PagiConfig
import PagiCore

/// `publish: CHANNEL` (docs/configuration.md §9.7): the POST body becomes one message on the channel, answered
/// `202 {"channel": ..., "receivers": N}` once the broker has it, or 503 when it could not take it.
/// The body size limit is the server's (`limits.body_bytes`, enforced before this runs).
struct PublishHandler: Handler {
    let channel: ChannelName
    let broker: any ChannelBroker

    func handle(_ request: Request) -> Response {
        guard request.method == "POST" else {
            return Response(status: 405, headers: ["Allow": "POST"])
        }
        let name = channel.resolve(for: request)
        let body = request.body
        let message = ChannelMessage(data: body, isText: String(validating: body, as: UTF8.self) != nil)
        return .later { [broker] exchange in
            broker.publish(message, to: name) { result in
                switch result {
                case .success(let receivers):
                    exchange.send(Self.json(202, "{\"channel\":\(TextEscaping.jsonString(name)),\"receivers\":\(receivers)}\n"))
                case .failure(let error):
                    exchange.send(Self.unavailable(error))
                }
            }
        }
    }

    /// An RFC 9457 problem document; the detail names the broker, never a file or a stack.
    private static func unavailable(_ error: PagiCore.ChannelError) -> Response {
        var response = json(503, "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
                             + "\"detail\":\(TextEscaping.jsonString("message not published: \(error.description)"))}\n")
        response.headers.set("Content-Type", "application/problem+json")
        response.headers.set("Retry-After", "1")
        return response
    }

    private static func json(_ status: Int, _ text: String) -> Response {
        Response(status: status, headers: ["Content-Type": "application/json", "Cache-Control": "no-store"], body: .bytes(Array(text.utf8)))
    }
}
