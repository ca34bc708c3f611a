#if canImport(Glibc)
import Glibc
#endif
import PagiConfig
import PagiCore
import Synchronization

/// `compress`: gzip or deflate on the fly, as the client's `Accept-Encoding` q-values prefer,
/// for the listed media types from `min_size` up. Never for a range (206), 204/304, HEAD, a
/// body that already has a `Content-Encoding`, or a stream (an event stream must not wait in a
/// compressor). Bodies in memory are compressed at once; files are read and compressed in
/// chunks as the client takes them, never whole. A compressed answer's strong `ETag` becomes
/// weak (it no longer names these exact bytes; `If-None-Match` compares weakly).
struct CompressMiddleware: Middleware {
    private let codings: [String]
    private let minSize: Int
    private let level: Int
    /// Exact types, and the major types of `type/*` entries.
    private let exactTypes: Set<String>
    private let majorTypes: Set<String>

    init(_ options: CompressOptions) {
        codings = options.algorithms.map(\.rawValue)
        minSize = options.minSize
        level = options.level
        exactTypes = Set(options.types.filter { !$0.hasSuffix("/*") })
        majorTypes = Set(options.types.filter { $0.hasSuffix("/*") }.map { String($0.dropLast(2)) })
    }

    func handle(_ request: inout Request, next: any Responder) -> Response {
        let coding = request.isHead ? nil : ContentNegotiation.contentCoding(acceptEncoding: request.headers["Accept-Encoding"],
                                                                              available: codings)
        var answer = next.respond(to: &request)
        answer.apply(Encoding(policy: self, coding: coding))
        return answer
    }

    /// The encoding of one answer, applied when it is there (see `Response.apply`).
    struct Encoding: ResponseEdit {
        let policy: CompressMiddleware
        let coding: String?
        func apply(to response: inout Response) { policy.encode(&response, as: coding) }
    }

    private func encode(_ response: inout Response, as coding: String?) {
        guard isCompressible(response) else { return }
        // The answer depends on Accept-Encoding whether or not this client gets it compressed.
        response.headers.addVary("Accept-Encoding")
        guard let coding, let format: Deflater.Format = coding == "gzip" ? .gzip : coding == "deflate" ? .deflate : nil else { return }
        switch response.body {
        case .bytes(let bytes):
            guard let compressed = Deflater.compress(bytes, format, level: level) else { return }
            response.body = .bytes(compressed)
        case .file(let file, let offset, let length):
            response.body = .stream(CompressedFile(file: file, offset: offset, length: length, format: format, level: level))
        default:
            return
        }
        response.headers.set("Content-Encoding", coding)
        response.headers.remove("Content-Length")
        if let etag = response.headers["ETag"], etag.hasPrefix("\"") { response.headers.set("ETag", "W/" + etag) }
    }

    private func isCompressible(_ response: Response) -> Bool {
        guard response.status >= 200, response.status != 204, response.status != 206, response.status != 304,
              response.headers["Content-Encoding"] == nil, response.headers["Content-Range"] == nil,
              let type = response.headers["Content-Type"]
        else { return false }
        switch response.body {
        case .bytes, .file: break
        default: return false
        }
        guard response.body.length >= max(1, minSize) else { return false }
        let mediaType = type.split(separator: ";", maxSplits: 1)[0].trimmingOWS.lowercased()
        if exactTypes.contains(mediaType) { return true }
        guard let slash = mediaType.firstIndex(of: "/") else { return false }
        return majorTypes.contains(String(mediaType[..<slash]))
    }
}

/// A file region sent compressed, read and compressed 64 KiB at a time while the client keeps up.
struct CompressedFile: BodyStream {
    let file: OpenFile
    let offset: Int
    let length: Int
    let format: Deflater.Format
    let level: Int

    /// Reading pauses while this much is queued for the client (slow readers stay cheap).
    static let highWater = 256 * 1024
    static let readSize = 64 * 1024

    func start(_ sink: any BodySink) {
        guard let descriptor = file.take() else {
            sink.close()
            return
        }
        guard let state = Progress(descriptor: descriptor, position: offset, remaining: length, format: format, level: level) else {
            close(descriptor)
            sink.close()
            return
        }
        sink.onEnd { state.release() }
        Self.pump(state, into: sink)
    }

    private static func pump(_ state: Progress, into sink: any BodySink) {
        while sink.pendingBytes < highWater {
            guard let (compressed, finished) = state.nextChunk() else {
                sink.close()
                return
            }
            if !compressed.isEmpty, !sink.write(compressed) { return }
            if finished {
                sink.finish()
                return
            }
        }
        sink.schedule(after: .milliseconds(2)) { pump(state, into: sink) }
    }

    /// The file position and compressor of one response. Every call comes from the connection's
    /// event loop (`start`, `schedule` and `onEnd` all run there); the lock only satisfies the
    /// compiler and is never contended.
    final class Progress: Sendable {
        private struct State {
            var descriptor: Int32
            var position: Int
            var remaining: Int
            var deflater: Deflater?
        }
        private let state: Mutex<State>

        init?(descriptor: Int32, position: Int, remaining: Int, format: Deflater.Format, level: Int) {
            guard let deflater = Deflater(format, level: level) else { return nil }
            state = Mutex(State(descriptor: descriptor, position: position, remaining: remaining, deflater: deflater))
        }

        /// The next compressed bytes and whether they end the body; nil when the file cannot be read.
        func nextChunk() -> (bytes: [UInt8], finished: Bool)? {
            state.withLock { state in
                guard let deflater = state.deflater, state.descriptor >= 0 else { return nil }
                let want = min(CompressedFile.readSize, state.remaining)
                var input = [UInt8](repeating: 0, count: want)
                let got = input.withUnsafeMutableBytes { pread(state.descriptor, $0.baseAddress, want, off_t(state.position)) }
                // A file that shrank under us ends early: the client sees a truncated stream, never garbage.
                guard got > 0 || want == 0 else { return nil }
                state.position += got
                state.remaining -= got
                let finished = state.remaining == 0
                var output: [UInt8] = []
                input.withUnsafeBytes { deflater.compress(UnsafeRawBufferPointer(rebasing: $0.prefix(got)), finish: finished, into: &output) }
                return (output, finished)
            }
        }

        func release() {
            state.withLock { state in
                if state.descriptor >= 0 { close(state.descriptor) }
                state.descriptor = -1
                state.deflater = nil
            }
        }

        deinit { release() }
    }
}
