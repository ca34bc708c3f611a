import Foundation
import OpenAPIKit
import PagiCore

extension JSONValue {
    /// From a value of the document (examples, defaults, enums) as OpenAPIKit's `AnyCodable`
    /// holds it: Swift scalars, `NSNull`, arrays and dictionaries of them. Dictionaries have no
    /// order there, so their keys are sorted for a stable output. Integers stay exact when they
    /// fit `Int`.
    init(foundation value: Any) {
        switch value {
        case is NSNull, is Void: self = .null
        // By exact type: on Apple platforms `as Bool` would also accept a bridged number.
        case let flag as Bool where type(of: value) == Bool.self: self = .bool(flag)
        case let integer as any BinaryInteger: self = Int(exactly: integer).map(JSONValue.integer) ?? .number(Double(integer))
        case let number as any BinaryFloatingPoint: self = .number(Double(number))
        case let number as NSNumber: self = JSONValue(number)
        case let string as String: self = .string(string)
        case let items as [Any]: self = .array(items.map(JSONValue.init(foundation:)))
        case let members as [String: Any]:
            self = .object(members.keys.sorted().compactMap { key in members[key].map { (key: key, value: JSONValue(foundation: $0)) } })
        case let codable as AnyCodable: self = JSONValue(foundation: codable.value)
        case let codables as [AnyCodable]: self = .array(codables.map { JSONValue(foundation: $0.value) })
        case let members as [String: AnyCodable]:
            self = .object(members.keys.sorted().compactMap { key in members[key].map { (key: key, value: JSONValue(foundation: $0.value)) } })
        default: self = .string(String(describing: value))
        }
    }

    /// By the number's Objective-C type: booleans are `c` (char), floating point `f` or `d`;
    /// any other type is an integer, read exactly rather than through `Double`.
    private init(_ number: NSNumber) {
        switch UInt8(truncatingIfNeeded: number.objCType.pointee) {
        case UInt8(ascii: "c"): self = .bool(number.boolValue)
        case UInt8(ascii: "f"), UInt8(ascii: "d"): self = .number(number.doubleValue)
        case UInt8(ascii: "L"), UInt8(ascii: "Q"): self = Int(exactly: number.uint64Value).map(JSONValue.integer) ?? .number(number.doubleValue)
        default: self = .integer(number.intValue)
        }
    }
}
