import NIOCore

/// Receive buffers that an idle keep-alive connection does not keep.
///
/// SwiftNIO keeps the first receive buffer it allocates for a channel for the channel's whole life
/// (`NIOPooledRecvBufferAllocator`): 2 KiB with its default adaptive allocator, and most of what an
/// idle keep-alive connection costs once thousands are open. Here that first buffer is a token 16
/// bytes; because `record` always allows growth and the channel reads once per wake-up
/// (`maxMessagesPerRead` 1, so the pool holds a single buffer), every later read gets a new buffer
/// sized as NIO's adaptive allocator would choose. The connection handler adopts it without a copy
/// and lets it go once the request is parsed, so between requests nothing stays allocated.
/// (Level-triggered epoll brings the channel back at once for whatever one read left unread.)
struct IdleLightReadBuffers: RecvByteBufferAllocator {
    static let firstBufferSize = 16
    private var adaptive = AdaptiveRecvByteBufferAllocator()
    private var started = false

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: started ? adaptive.nextBufferSize() ?? adaptive.initial : Self.firstBufferSize)
    }

    mutating func record(actualReadBytes: Int) -> Bool {
        if started { _ = adaptive.record(actualReadBytes: actualReadBytes) }
        started = true
        return true
    }
}
