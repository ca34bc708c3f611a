import NIOCore

/// Whether a TLS ClientHello offers an application protocol (ALPN, RFC 7301) — read by hand
/// because NIOTLS's `SNIHandler` parses the hello for the server name only, and the certificate
/// of a TLS-ALPN-01 challenge (RFC 8737) must be chosen before the handshake, by the protocol
/// offered. Looks at the first record only (`TLSFrontDoor` waits for all of it): a hello split
/// over several records (rare; ACME servers send one) is read as not offering it.
enum ClientHelloALPN {
    static func offers(_ wanted: String, in record: ByteBuffer) -> Bool {
        var bytes = record
        // Record header: handshake (22), version, length; handshake header: ClientHello (1), length.
        guard bytes.readInteger(as: UInt8.self) == 22, bytes.readInteger(as: UInt16.self) != nil,
              let recordLength = bytes.readInteger(as: UInt16.self), var hello = bytes.readSlice(length: Int(recordLength)),
              hello.readInteger(as: UInt8.self) == 1, hello.readBytes(length: 3) != nil,
              hello.readBytes(length: 2 + 32) != nil,                         // version, random
              skip(&hello, lengthBytes: 1), skip(&hello, lengthBytes: 2), skip(&hello, lengthBytes: 1), // session id, suites, compression
              let extensionsLength = hello.readInteger(as: UInt16.self),
              var extensions = hello.readSlice(length: Int(extensionsLength)) else { return false }
        while let type = extensions.readInteger(as: UInt16.self), let length = extensions.readInteger(as: UInt16.self),
              var data = extensions.readSlice(length: Int(length)) {
            guard type == 16 else { continue }
            guard data.readInteger(as: UInt16.self) != nil else { return false }
            while let nameLength = data.readInteger(as: UInt8.self), let name = data.readString(length: Int(nameLength)) {
                if name == wanted { return true }
            }
            return false
        }
        return false
    }

    /// Skips a field prefixed by its length in `lengthBytes` bytes; false when it runs past the end.
    private static func skip(_ buffer: inout ByteBuffer, lengthBytes: Int) -> Bool {
        let length: Int? = lengthBytes == 1 ? buffer.readInteger(as: UInt8.self).map(Int.init) : buffer.readInteger(as: UInt16.self).map(Int.init)
        guard let length, buffer.readableBytes >= length else { return false }
        buffer.moveReaderIndex(forwardBy: length)
        return true
    }
}
