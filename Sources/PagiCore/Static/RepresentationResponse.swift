import PagiConfig

/// One representation of a file: the file itself or a precompressed sibling.
struct Representation {
    let entry: OpenedEntry
    /// nil for identity.
    let encoding: StaticConfig.Encoding?
    /// The file has precompressed siblings, so every answer about it depends on `Accept-Encoding`.
    let hasVariants: Bool
}

/// Answers a GET or HEAD for one chosen representation: validators, conditionals, ranges, body.
struct RepresentationResponse {
    let representation: Representation
    /// Of the original file, also for a precompressed variant.
    let contentType: String
    let cacheControl: String?
    /// Computed once: conditionals, If-Range and the headers all need it.
    private let etag: String

    init(representation: Representation, contentType: String, cacheControl: String?) {
        self.representation = representation
        self.contentType = contentType
        self.cacheControl = cacheControl
        etag = representation.entry.status.entityTag(encoding: representation.encoding)
    }

    private var status: FileStatus { representation.entry.status }

    func answer(_ request: Request, cache: SmallFileCache) -> Response {
        switch ConditionalRequest.evaluate(method: request.method, headers: request.headers, etag: etag,
                                           lastModified: status.modifiedSeconds) {
        case .preconditionFailed:
            return Response(status: 412, headers: varyHeaders())
        case .notModified:
            return Response(status: 304, headers: validatorHeaders())
        case .proceed:
            break
        }
        let rangeFields = request.headers.values("Range")
        if request.method == "GET", rangeFields.count == 1,
           ConditionalRequest.rangeApplies(headers: request.headers, etag: etag, lastModified: status.modifiedSeconds) {
            switch ByteRanges.evaluate(rangeFields[0], length: status.size) {
            case .unsatisfiable:
                var headers = varyHeaders()
                headers.add("Accept-Ranges", "bytes")
                headers.add("Content-Range", "bytes */\(status.size)")
                return Response(status: 416, headers: headers)
            case .satisfiable(let ranges) where ranges.count == 1:
                var headers = representationHeaders(contentType: contentType)
                headers.add("Content-Range", contentRange(ranges[0]))
                return Response(status: 206, headers: headers,
                                body: .file(openFile(), offset: ranges[0].lowerBound, length: ranges[0].count))
            case .satisfiable(let ranges):
                return multipartResponse(ranges)
            case .none:
                break
            }
        }
        // HEAD gets the same body as GET (the engine only uses its length), without reading it.
        let inMemory = request.method == "GET" ? cache.contents(of: representation.entry.descriptor, status: status) : nil
        let body: ResponseBody = inMemory.map { .bytes($0) } ?? .file(openFile(), offset: 0, length: status.size)
        return Response(status: 200, headers: representationHeaders(contentType: contentType), body: body)
    }

    private func multipartResponse(_ ranges: [ClosedRange<Int>]) -> Response {
        let boundary = Self.makeBoundary()
        let parts = ranges.enumerated().map { index, range in
            // The CRLF ending the previous part's data belongs to this part's delimiter.
            let preamble = (index == 0 ? "" : "\r\n") + "--\(boundary)\r\nContent-Type: \(contentType)\r\n"
                + "Content-Range: \(contentRange(range))\r\n\r\n"
            return (preamble: Array(preamble.utf8), offset: range.lowerBound, length: range.count)
        }
        let trailer = Array("\r\n--\(boundary)--\r\n".utf8)
        let headers = representationHeaders(contentType: "multipart/byteranges; boundary=" + boundary)
        return Response(status: 206, headers: headers, body: .multipart(openFile(), parts: parts, trailer: trailer))
    }

    private func contentRange(_ range: ClosedRange<Int>) -> String {
        "bytes \(range.lowerBound)-\(range.upperBound)/\(status.size)"
    }

    /// Headers of a 200 or 206.
    private func representationHeaders(contentType: String) -> HeaderFields {
        var headers: HeaderFields = ["Content-Type": contentType]
        headers.add("Last-Modified", HTTPDate.format(epochSeconds: status.modifiedSeconds))
        headers.add("ETag", etag)
        headers.add("Accept-Ranges", "bytes")
        if let cacheControl { headers.add("Cache-Control", cacheControl) }
        if let encoding = representation.encoding { headers.add("Content-Encoding", encoding.rawValue) }
        if representation.hasVariants { headers.add("Vary", "Accept-Encoding") }
        return headers
    }

    /// Headers of a 304: what a cache needs to refresh its stored response.
    private func validatorHeaders() -> HeaderFields {
        var headers: HeaderFields = ["ETag": etag]
        headers.add("Last-Modified", HTTPDate.format(epochSeconds: status.modifiedSeconds))
        if let cacheControl { headers.add("Cache-Control", cacheControl) }
        return headers.merging(varyHeaders())
    }

    private func varyHeaders() -> HeaderFields {
        representation.hasVariants ? ["Vary": "Accept-Encoding"] : HeaderFields()
    }

    /// The descriptor moves into the response, which closes it once sent (or dropped).
    private func openFile() -> OpenFile {
        OpenFile(descriptor: representation.entry.descriptor.release())
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

extension HeaderFields {
    fileprivate func merging(_ other: HeaderFields) -> HeaderFields {
        var merged = self
        for field in other { merged.add(field.name, field.value) }
        return merged
    }
}
