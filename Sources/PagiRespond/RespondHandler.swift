import PagiConfig
import PagiCore
import Synchronization

/// `respond` (docs/configuration.md §9.2): one canned or templated response, or a list served in turn.
public final class RespondHandler: Handler {
    private let responses: [StubResponse]
    /// Start over after the last response, instead of repeating it.
    private let cycle: Bool
    /// Requests answered so far by this route (only counted for lists).
    private let served = Mutex(0)

    public init(_ options: RespondOptions, location: SourceLocation) throws {
        responses = try options.responses.map { try StubResponse($0, location: location) }
        cycle = options.cycle
    }

    public func handle(_ request: Request) -> Response {
        // Through the buffer: an array's subscript would copy the whole `StubResponse` (retaining
        // everything in it) for every request.
        let index = nextIndex()
        return responses.withUnsafeBufferPointer { $0[index].response(for: request) }
    }

    private func nextIndex() -> Int {
        let count = responses.count
        guard count > 1 else { return 0 }
        return served.withLock { served in
            let index = cycle ? served % count : min(served, count - 1)
            // Stops counting once the last response repeats for good, so the count never overflows.
            if cycle || served < count { served = cycle ? (served + 1) % count : served + 1 }
            return index
        }
    }
}
