import PagiConfig
import PagiCore

/// `redirect` (docs/configuration.md §9.3): a templated `Location` with a 301/302/303/307/308 status.
public struct RedirectHandler: Handler {
    private let target: TextTemplate
    private let status: Int

    public init(_ options: RedirectOptions, location: SourceLocation) throws {
        target = try TextTemplate(options.to, escaping: .none, origin: .config(handler: location))
        status = options.status
    }

    public func handle(_ request: Request) -> Response {
        let location = Self.uriSafe(target.render(TemplateContext(request)))
        let escaped = TextEscaping.html(location)
        let page = "<!DOCTYPE html>\n<html><head><title>\(status) \(ErrorResponses.reasonPhrase(status))</title></head>"
            + "<body><a href=\"\(escaped)\">\(escaped)</a></body></html>\n"
        return Response(status: status, headers: ["Location": location, "Content-Type": "text/html; charset=utf-8"],
                        body: .bytes(Array(page.utf8)))
    }

    /// Values from the request may hold spaces, controls or non-ASCII text: percent-encoded, so
    /// the `Location` field stays one valid URI reference (and cannot be split).
    static func uriSafe(_ target: String) -> String {
        var out = ""
        for byte in target.utf8 {
            if byte > 0x20 && byte < 0x7F && !"\"<>\\^`{|}".utf8.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
