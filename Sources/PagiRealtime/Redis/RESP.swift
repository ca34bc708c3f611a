import NIOCore
import PagiConfig

// No package of the local mirror speaks Redis (no RediStack or similar is listed), so the few
// commands channels need (AUTH, SELECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE) are encoded and their
// replies decoded here, by hand, in RESP2.

/// A RESP2 reply or push message.
enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int)
    case bulkString([UInt8]?)
    case array([RESPValue]?)

    /// A bulk or simple string's bytes.
    var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }
}

enum RESPCommand {
    /// One command as an array of bulk strings.
    static func encode(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        encode(arguments.map { Array($0.utf8) }, into: &buffer)
    }
}

struct RESPProtocolError: Error {}

/// Decodes RESP2 values off the byte stream.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    /// Nesting deeper than any reply to our commands means a broken or hostile peer.
    private static let maxDepth = 8

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var reader = buffer
        guard let value = try Self.parse(&reader, depth: 0) else { return .needMoreData }
        buffer = reader
        context.fireChannelRead(NIOAny(value))
        return .continue
    }

    /// One value from the front of `buffer`, or nil when it is not complete yet (then `buffer` is undefined).
    static func parse(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard depth <= maxDepth else { throw RESPProtocolError() }
        guard let type = buffer.readInteger(as: UInt8.self), let line = readLine(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simpleString(line)
        case UInt8(ascii: "-"): return .error(line)
        case UInt8(ascii: ":"):
            guard let value = Int(line) else { throw RESPProtocolError() }
            return .integer(value)
        case UInt8(ascii: "$"):
            // Redis caps bulk strings at 512 MiB; a larger length is a broken peer (and `length + 2`
            // must not overflow).
            guard let length = Int(line), length >= -1, length <= 512 << 20 else { throw RESPProtocolError() }
            if length == -1 { return .bulkString(nil) }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(line), count >= -1 else { throw RESPProtocolError() }
            if count == -1 { return .array(nil) }
            var items: [RESPValue] = []
            items.reserveCapacity(min(count, 64))
            for _ in 0..<count {
                guard let item = try parse(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw RESPProtocolError()
        }
    }

    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")),
              end + 1 < buffer.writerIndex
        else { return nil }
        let length = end - buffer.readerIndex
        guard let line = buffer.readString(length: length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}
