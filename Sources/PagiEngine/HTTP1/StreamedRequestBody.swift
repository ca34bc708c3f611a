import NIOCore
import PagiCore

/// A request body handed to its handler as it arrives (`StreamsRequestBody`, docs/proxy.md
/// "Streamed uploads"). The connection parses body bytes only while `isReading`: before the handler
/// asks for them and while it has paused, the client is left unread, so TCP slows it down.
/// Used on the connection's event loop only.
final class StreamedRequestBody: RequestBodySource, @unchecked Sendable {
    // @unchecked: created, read and ended on the connection's event loop only.
    let declaredLength: Int?
    private var consumer: ((RequestBodyPart) -> Void)?
    private var paused = false
    private var ended = false
    /// The connection goes on parsing (the handler started reading or resumed).
    private let wantsMore: () -> Void

    init(declaredLength: Int?, wantsMore: @escaping () -> Void) {
        self.declaredLength = declaredLength
        self.wantsMore = wantsMore
    }

    /// The handler takes bytes now.
    var isReading: Bool { consumer != nil && !paused && !ended }

    func read(_ consumer: @escaping (RequestBodyPart) -> Void) {
        guard self.consumer == nil, !ended else { return }
        self.consumer = consumer
        if !paused { wantsMore() }
    }

    func pause() { paused = true }

    func resume() {
        guard paused else { return }
        paused = false
        if isReading { wantsMore() }
    }

    func deliver(_ chunk: ByteBuffer) {
        consumer?(.bytes(Array(chunk.readableBytesView)))
    }

    func end() { close(with: .end) }
    func fail() { close(with: .failed) }

    private func close(with part: RequestBodyPart) {
        guard !ended else { return }
        ended = true
        let consumer = self.consumer
        self.consumer = nil
        consumer?(part)
    }
}
