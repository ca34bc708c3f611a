import Foundation
import PagiCore

/// The text fields of a `multipart/form-data` body (RFC 7578): each part's `name` from its
/// `Content-Disposition`, and its content as text (a file's bytes that are not UTF-8 are
/// replaced, as only their presence is checked). Written by hand: none of the packages we may use
/// parses multipart bodies.
enum MultipartForm {
    /// nil when the body is not a multipart body with the boundary its `Content-Type` names.
    static func fields(of body: [UInt8], contentType: String) -> [(name: String, value: String)]? {
        guard let boundary = boundary(of: contentType) else { return nil }
        let delimiter = Array(("--" + boundary).utf8)
        var fields: [(name: String, value: String)] = []
        guard var position = find(delimiter, in: body, from: 0) else { return nil }
        while true {
            position += delimiter.count
            if body[position...].starts(with: Array("--".utf8)) { return fields }  // the closing delimiter
            guard body[position...].starts(with: Array("\r\n".utf8)) else { return nil }
            position += 2
            guard let headersEnd = find(Array("\r\n\r\n".utf8), in: body, from: position),
                  let next = find(Array("\r\n".utf8) + delimiter, in: body, from: headersEnd + 4) else { return nil }
            let headers = String(decoding: body[position..<headersEnd], as: UTF8.self)
            if let name = fieldName(headers) {
                fields.append((name, String(decoding: body[(headersEnd + 4)..<next], as: UTF8.self)))
            }
            position = next + 2
        }
    }

    private static func boundary(of contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            let unquoted = value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 ? String(value.dropFirst().dropLast()) : value
            return unquoted.isEmpty ? nil : unquoted
        }
        return nil
    }

    /// `name="..."` of the part's `Content-Disposition: form-data`.
    private static func fieldName(_ headers: String) -> String? {
        for line in headers.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
            for parameter in line.split(separator: ";").dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "name" else { continue }
                let value = pair[1].trimmingCharacters(in: .whitespaces)
                return value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 ? String(value.dropFirst().dropLast()) : value
            }
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
