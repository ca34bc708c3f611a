import Foundation
@testable import PagiCore
import PagiConfig
import XCTest

/// A temporary site directory for static-handler tests.
final class StaticFixture {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("pagi-static-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    @discardableResult
    func write(_ relative: String, _ text: String, modified: Int? = nil) throws -> String {
        try write(relative, Array(text.utf8), modified: modified)
    }

    @discardableResult
    func write(_ relative: String, _ bytes: [UInt8], modified: Int? = nil) throws -> String {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
        if let modified { try setModified(relative, modified) }
        return url.path
    }

    func setModified(_ relative: String, _ epochSeconds: Int) throws {
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: TimeInterval(epochSeconds))],
                                              ofItemAtPath: path(relative))
    }

    func makeDirectory(_ relative: String) throws {
        try FileManager.default.createDirectory(at: root.appendingPathComponent(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to destination: String) throws {
        try FileManager.default.createSymbolicLink(atPath: path(relative), withDestinationPath: destination)
    }

    /// `freshFor` is zero by default so every request sees the file system as the test left it.
    func handler(root relativeRoot: String = "", pattern: RoutePattern = "/", freshFor: Duration = .zero,
                 configure: (inout StaticConfig) -> Void = { _ in }) -> StaticHandler {
        var config = StaticConfig(root: relativeRoot.isEmpty ? root.path : path(relativeRoot))
        configure(&config)
        return StaticHandler(config: config, pattern: pattern, freshFor: freshFor)
    }
}

func makeRequest(_ path: String, method: String = "GET", headers: [String: String] = [:], query: String? = nil,
                 params: [String: String] = [:]) -> Request {
    var request = Request(method: method, target: path + (query.map { "?" + $0 } ?? ""), path: path, query: query,
                          headers: HeaderFields(headers.map { (name: $0.key, value: $0.value) }), host: "localhost")
    request.params = params
    return request
}

extension StaticHandler {
    func get(_ path: String, _ headers: [String: String] = [:], method: String = "GET", query: String? = nil,
             params: [String: String] = [:]) -> Response {
        handle(makeRequest(path, method: method, headers: headers, query: query, params: params))
    }
}

extension Response {
    /// The body as it would go on the wire; file slices are read with pread from the descriptor.
    var bodyBytes: [UInt8] {
        switch body {
        case .empty, .omitted: return []
        case .stream:
            XCTFail("a streamed body has no bytes up front")
            return []
        case .bytes(let bytes): return bytes
        case .file(let file, let offset, let length):
            return Self.read(file, slices: [(offset, length)])[0]
        case .multipart(let file, let parts, let trailer):
            let slices = Self.read(file, slices: parts.map { ($0.offset, $0.length) })
            return zip(parts, slices).flatMap { $0.preamble + $1 } + trailer
        }
    }

    var text: String { String(decoding: bodyBytes, as: UTF8.self) }

    private static func read(_ file: OpenFile, slices: [(offset: Int, length: Int)]) -> [[UInt8]] {
        guard let descriptor = file.take() else {
            XCTFail("descriptor already taken")
            return slices.map { _ in [] }
        }
        defer { close(descriptor) }
        return slices.map { slice in
            var buffer = [UInt8](repeating: 0, count: slice.length)
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, slice.length, off_t(slice.offset)) }
            XCTAssertEqual(count, slice.length, "short read")
            return buffer
        }
    }
}

/// Bytes that differ at every offset for a while, so a wrong slice shows.
func patternBytes(count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
}
