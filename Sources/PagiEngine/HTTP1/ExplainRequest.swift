import PagiCore

/// Builds the request `pagi-serve explain METHOD URL` asks about, through the same validation the
/// engine applies to requests off the wire, so `explain` routes exactly what the server would.
public enum ExplainRequest {
    public static func make(method: String, url: String, headers: [String]) throws(EngineError) -> Request {
        var fields: [(name: String, value: String)] = []
        for header in headers {
            guard let colon = header.firstIndex(of: ":") else { throw EngineError("invalid header '\(header)' (expected 'Name: value')") }
            fields.append((String(header[..<colon]), header[header.index(after: colon)...].trimmingOWS))
        }
        if !fields.contains(where: { $0.name.asciiCaseInsensitiveEquals("host") }) {
            fields.append(("Host", "localhost"))
        }
        let head = RequestHead(method: method.uppercased(), target: url, versionMinor: 1, headers: fields,
                               framing: .none, expectsContinue: false)
        do {
            return try RequestValidation.makeRequest(head, clientAddress: "127.0.0.1", knownMethods: [method.uppercased()])
        } catch {
            throw EngineError("the server would answer \(error.status): \(error.reason)")
        }
    }
}
