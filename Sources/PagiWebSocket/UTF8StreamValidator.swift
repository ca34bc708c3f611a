import NIOCore

/// Validates UTF-8 incrementally, across frame boundaries, and rejects a sequence at the first
/// byte that makes it invalid (overlong forms, surrogates and code points past U+10FFFF
/// included), as RFC 6455 §8.1 asks of text messages. Hand-written: the standard library only
/// validates whole strings, and a message's fragments arrive one by one.
struct UTF8StreamValidator {
    /// Continuation bytes still expected in the current sequence.
    private var remaining = 0
    /// The range the next continuation byte must fall in.
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// True when every sequence so far is complete (the message may end here).
    var isComplete: Bool { remaining == 0 }

    /// Feeds bytes; false as soon as they cannot be the start of valid UTF-8.
    mutating func feed(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { feed($0) }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            if remaining == 0 {
                // ASCII fast path, eight bytes at a time.
                while index + 8 <= count,
                      bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                }
                guard index < count else { break }
            }
            guard accept(bytes[index]) else { return false }
            index += 1
        }
        return true
    }

    private mutating func accept(_ byte: UInt8) -> Bool {
        if remaining > 0 {
            guard byte >= lower && byte <= upper else { return false }
            remaining -= 1
            lower = 0x80
            upper = 0xBF
            return true
        }
        switch byte {
        case 0x00...0x7F: return true
        case 0xC2...0xDF: expect(1, 0x80, 0xBF)
        case 0xE0: expect(2, 0xA0, 0xBF)          // no overlong 3-byte forms
        case 0xED: expect(2, 0x80, 0x9F)          // no UTF-16 surrogates
        case 0xE1...0xEF: expect(2, 0x80, 0xBF)
        case 0xF0: expect(3, 0x90, 0xBF)          // no overlong 4-byte forms
        case 0xF1...0xF3: expect(3, 0x80, 0xBF)
        case 0xF4: expect(3, 0x80, 0x8F)          // nothing past U+10FFFF
        default: return false
        }
        return true
    }

    private mutating func expect(_ continuation: Int, _ lower: UInt8, _ upper: UInt8) {
        remaining = continuation
        self.lower = lower
        self.upper = upper
    }
}
