import Foundation
import PagiConfig
import PagiCore

/// One response of a `respond` handler (docs/configuration.md §9.2), compiled from its validated options.
/// Everything that does not depend on the request is computed here, once: a response without
/// templates is built completely at load and only copied per request.
struct StubResponse: Sendable {
    private enum Body: Sendable {
        case bytes([UInt8])
        case text(TextTemplate)
        case json(JSONTemplate)
    }
    private let status: Int
    private let headers: [(name: String, value: TextTemplate)]
    private let body: Body?
    private let delay: StubSpec.Delay?
    private let bytesPerSecond: Int?
    private let fault: Fault?
    /// The headers, serialised once, when none of them is templated (often only the body is).
    private var literalHeaders: HeaderFields?
    /// The whole response when neither headers nor body are templated.
    private var prebuilt: Response?

    /// Compiles the templates of `spec` (decoded by the loader); a template that does not parse
    /// or a stub file that cannot be read is a config error at `location`.
    init(_ spec: StubSpec, location: SourceLocation) throws {
        let origin = TemplateOrigin.config(handler: location)
        status = spec.status
        fault = spec.fault
        bytesPerSecond = spec.bytesPerSecond
        delay = spec.delay

        var written = spec.headers.map { (name: $0.name, value: $0.value) }
        let contentType: String?
        if let index = written.firstIndex(where: { $0.name.asciiCaseInsensitiveEquals("Content-Type") }) {
            contentType = written[index].value
        } else {
            contentType = Self.defaultContentType(spec.body)
            if let contentType { written.insert((name: "Content-Type", value: contentType), at: 0) }
        }
        let escaping: TextTemplate.Escaping = contentType?.lowercased().hasPrefix("text/html") == true ? .html : .none
        headers = try written.map { (name: $0.name, value: try TextTemplate($0.value, escaping: .none, origin: origin)) }

        switch spec.body {
        case .json(let json)?: body = .json(try JSONTemplate(json, origin: origin))
        case .text(let text)?: body = .text(try TextTemplate(text, escaping: escaping, origin: origin))
        case .file(let path, let templated)?: body = try Self.fileBody(path, templated: templated, escaping: escaping, location: location)
        case nil: body = nil
        }
        // Every other property is set: what is not templated can now be built once.
        literalHeaders = nil
        prebuilt = nil
        literalHeaders = literalHeaderFields()
        prebuilt = literalResponse()
    }

    /// The response to `request` (the delay of a `{min, max}` range is drawn anew each time).
    func response(for request: Request) -> Response {
        let response = prebuilt ?? render(for: request)
        guard case .between(let min, let max) = delay else { return response }
        let drawn = Duration.nanoseconds(Int64.random(in: min.nanoseconds...max.nanoseconds))
        return fault.map { .fault($0, after: drawn) } ?? .delayed(response, by: drawn)
    }

    private func render(for request: Request) -> Response {
        let context = TemplateContext(request)
        var fields: HeaderFields
        if let literalHeaders {
            fields = literalHeaders
        } else {
            fields = HeaderFields()
            for header in headers { fields.add(header.name, Self.headerSafe(header.value.render(context))) }
        }
        let bytes: [UInt8]? = switch body {
        case .bytes(let bytes): bytes
        case .text(let template): Array(template.render(context).utf8)
        case .json(let template): Array(template.render(context).utf8)
        case nil: nil
        }
        return assemble(headers: fields, body: bytes)
    }

    /// Built once when nothing is templated.
    private func literalHeaderFields() -> HeaderFields? {
        var fields = HeaderFields()
        for header in headers {
            guard let value = header.value.literal else { return nil }
            fields.add(header.name, Self.headerSafe(value))
        }
        // Sent unchanged for every request: serialised once.
        fields.prepareFieldLines()
        return fields
    }

    private func literalResponse() -> Response? {
        guard let fields = literalHeaders else { return nil }
        let bytes: [UInt8]?
        switch body {
        case .bytes(let fixed):
            bytes = fixed
        case .text(let template):
            guard let literal = template.literal else { return nil }
            bytes = Array(literal.utf8)
        case .json(let template):
            guard let encoded = template.encoded else { return nil }
            bytes = Array(encoded.utf8)
        case nil:
            bytes = nil
        }
        return assemble(headers: fields, body: bytes)
    }

    private func assemble(headers: HeaderFields, body bytes: [UInt8]?) -> Response {
        var response = Response(status: status, headers: headers)
        if let bytes {
            response.body = bytesPerSecond.map { .stream(ThrottledBody(bytes: bytes, bytesPerSecond: $0)) } ?? .bytes(bytes)
        }
        let fixedDelay: Duration? = if case .fixed(let duration) = delay { duration } else { nil }
        if let fault { return .fault(fault, after: fixedDelay) }
        return fixedDelay.map { .delayed(response, by: $0) } ?? response
    }

    /// `application/json` for `json`, by extension for `file`, `text/plain` for `body`.
    private static func defaultContentType(_ body: StubSpec.Body?) -> String? {
        switch body {
        case .json?: "application/json"
        case .text?: "text/plain; charset=utf-8"
        case .file(let path, _)?: MIMETypes.contentType(forPath: path)
        case nil: nil
        }
    }

    /// A stub file, read once at load; templated when `template: true`.
    private static func fileBody(_ path: String, templated: Bool, escaping: TextTemplate.Escaping,
                                 location: SourceLocation) throws -> Body {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(diagnostics: [Diagnostic(.error, "cannot read respond file '\(path)'", at: location)])
        }
        guard templated else { return .bytes(Array(data)) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(diagnostics: [Diagnostic(.error, "respond file '\(path)' is not UTF-8 text, so it cannot be a template",
                                                       at: location)])
        }
        return .text(try TextTemplate(text, escaping: escaping, origin: .file(path: path)))
    }

    /// Templated header values come from the request: line breaks and other controls would end the
    /// field (response splitting), so they become spaces.
    static func headerSafe(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return value }
        return String(String.UnicodeScalarView(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
