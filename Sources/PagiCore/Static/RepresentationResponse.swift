import PagiConfig

/// One representation of a file: the file itself or a precompressed sibling.
struct Representation {
    let entry: OpenedEntry
    /// nil for identity.
    let encoding: StaticConfig.Encoding?
    /// The file has precompressed siblings, so every answer about it depends on `Accept-Encoding`.
    let hasVariants: Bool
}

/// Everything about a representation that answers need besides its bytes: validators and the
/// header sets, built once. Plain data, so `FreshAnswers` can keep it without an open file.
struct RepresentationMetadata: Sendable {
    let contentType: String
    let size: Int
    let modifiedSeconds: Int
    let etag: String
    /// Headers of a 200 or 206.
    private(set) var representationHeaders: HeaderFields
    /// Headers of a 304: what a cache needs to refresh its stored response.
    private(set) var validatorHeaders: HeaderFields
    let varyHeaders: HeaderFields

    init(_ representation: Representation, contentType: String, cacheControl: String?) {
        let status = representation.entry.status
        self.contentType = contentType
        size = status.size
        modifiedSeconds = status.modifiedSeconds
        etag = status.entityTag(encoding: representation.encoding)
        let lastModified = HTTPDate.format(epochSeconds: status.modifiedSeconds)
        varyHeaders = representation.hasVariants ? ["Vary": "Accept-Encoding"] : HeaderFields()

        var headers: HeaderFields = ["Content-Type": contentType]
        headers.add("Last-Modified", lastModified)
        headers.add("ETag", etag)
        headers.add("Accept-Ranges", "bytes")
        if let cacheControl { headers.add("Cache-Control", cacheControl) }
        if let encoding = representation.encoding { headers.add("Content-Encoding", encoding.rawValue) }
        if representation.hasVariants { headers.add("Vary", "Accept-Encoding") }
        representationHeaders = headers

        var validators: HeaderFields = ["ETag": etag]
        validators.add("Last-Modified", lastModified)
        if let cacheControl { validators.add("Cache-Control", cacheControl) }
        if representation.hasVariants { validators.add("Vary", "Accept-Encoding") }
        validatorHeaders = validators
    }

    /// A copy whose header sets are serialised once, for answers repeated from memory.
    func withPreparedFieldLines() -> RepresentationMetadata {
        var copy = self
        copy.representationHeaders.prepareFieldLines()
        copy.validatorHeaders.prepareFieldLines()
        return copy
    }
}

/// Where a representation's bytes come from: its open file, or memory.
enum RepresentationBody {
    /// The open file; small files are read through `cache`.
    case file(Descriptor, status: FileStatus, cache: SmallFileCache)
    case memory([UInt8])
}

/// Answers a GET or HEAD for one chosen representation: validators, conditionals, ranges, body.
struct RepresentationResponse {
    let metadata: RepresentationMetadata
    let body: RepresentationBody

    func answer(_ request: Request) -> Response {
        switch ConditionalRequest.evaluate(method: request.method, headers: request.headers, etag: metadata.etag,
                                           lastModified: metadata.modifiedSeconds) {
        case .preconditionFailed:
            return Response(status: 412, headers: metadata.varyHeaders)
        case .notModified:
            return Response(status: 304, headers: metadata.validatorHeaders)
        case .proceed:
            break
        }
        if request.method == "GET", request.headers.contains("Range") {
            if let ranged = rangeResponse(request) { return ranged }
        }
        return Response(status: 200, headers: metadata.representationHeaders, body: fullBody(request))
    }

    /// The whole representation. HEAD gets the same body as GET (the engine only uses its
    /// length), without reading the file.
    private func fullBody(_ request: Request) -> ResponseBody {
        switch body {
        case .memory(let bytes):
            return .bytes(bytes)
        case .file(let descriptor, let status, let cache):
            if request.method == "GET", let bytes = cache.contents(of: descriptor, status: status) {
                return .bytes(bytes)
            }
            return .file(OpenFile(descriptor: descriptor.release()), offset: 0, length: metadata.size)
        }
    }

    /// 206 or 416 when `Range` applies, nil to answer 200.
    private func rangeResponse(_ request: Request) -> Response? {
        let rangeFields = request.headers.values("Range")
        guard rangeFields.count == 1,
              ConditionalRequest.rangeApplies(headers: request.headers, etag: metadata.etag, lastModified: metadata.modifiedSeconds)
        else { return nil }
        switch ByteRanges.evaluate(rangeFields[0], length: metadata.size) {
        case .unsatisfiable:
            var headers = metadata.varyHeaders
            headers.add("Accept-Ranges", "bytes")
            headers.add("Content-Range", "bytes */\(metadata.size)")
            return Response(status: 416, headers: headers)
        case .satisfiable(let ranges) where ranges.count == 1:
            var headers = metadata.representationHeaders
            headers.add("Content-Range", contentRange(ranges[0]))
            return Response(status: 206, headers: headers, body: slice(ranges[0]))
        case .satisfiable(let ranges):
            return multipartResponse(ranges)
        case .none:
            return nil
        }
    }

    private func slice(_ range: ClosedRange<Int>) -> ResponseBody {
        switch body {
        case .memory(let bytes):
            return .bytes(Array(bytes[range]))
        case .file(let descriptor, let status, let cache):
            // A range no bigger than a cacheable file leaves from memory, with the head in one write:
            // cheaper than a file region plus the two cork calls around it (measured in
            // docs/performance.md). Bigger ones, and a file truncated meanwhile, go by sendfile.
            if let whole = cache.contents(of: descriptor, status: status) { return .bytes(Array(whole[range])) }
            if range.count <= cache.maximumFileSize,
               let bytes = SmallFileCache.read(descriptor, offset: range.lowerBound, count: range.count) {
                return .bytes(bytes)
            }
            return .file(OpenFile(descriptor: descriptor.release()), offset: range.lowerBound, length: range.count)
        }
    }

    private func multipartResponse(_ ranges: [ClosedRange<Int>]) -> Response {
        let boundary = Self.makeBoundary()
        let parts = ranges.enumerated().map { index, range in
            // The CRLF ending the previous part's data belongs to this part's delimiter.
            let preamble = (index == 0 ? "" : "\r\n") + "--\(boundary)\r\nContent-Type: \(metadata.contentType)\r\n"
                + "Content-Range: \(contentRange(range))\r\n\r\n"
            return (preamble: Array(preamble.utf8), offset: range.lowerBound, length: range.count)
        }
        let trailer = Array("\r\n--\(boundary)--\r\n".utf8)
        var headers = metadata.representationHeaders
        headers.set("Content-Type", "multipart/byteranges; boundary=" + boundary)
        let multipart: ResponseBody
        switch body {
        case .memory(let bytes):
            multipart = .bytes(parts.flatMap { $0.preamble + bytes[$0.offset..<($0.offset + $0.length)] } + trailer)
        case .file(let descriptor, _, _):
            multipart = .multipart(OpenFile(descriptor: descriptor.release()), parts: parts, trailer: trailer)
        }
        return Response(status: 206, headers: headers, body: multipart)
    }

    private func contentRange(_ range: ClosedRange<Int>) -> String {
        // Concatenation: interpolation formats each number through its generic description (~3× slower).
        "bytes " + String(range.lowerBound) + "-" + String(range.upperBound) + "/" + String(metadata.size)
    }

    /// Random, so no file's content can contain the delimiter by design.
    private static func makeBoundary() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<3).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}
