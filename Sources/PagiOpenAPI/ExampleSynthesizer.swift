import PagiCore

/// Builds an example from a schema when the document gives none: the schema's own `const`,
/// valid example, default or first enum value when present, else a value of the right type and
/// format within its bounds. `allOf` members are merged into one object; only a truly recursive
/// reference stops the recursion, with the smallest valid value (an empty array, an optional
/// property left out), never a `null` the schema does not allow. Each example is checked against
/// its schema before it is used.
struct ExampleSynthesizer {
    let graph: SchemaGraph
    /// Examples already built, by schema: shared components are built once per document.
    private var cache: [SchemaID: JSONValue?] = [:]
    /// Below this many nested schemas, objects keep only their required properties (big
    /// documents nest components deeply; a full tree of every optional property explodes).
    private static let optionalPropertiesDepth = 4

    init(_ graph: SchemaGraph) {
        self.graph = graph
    }

    /// nil when the schema has no finite valid value (it only recurses, or is `false`).
    mutating func example(for id: SchemaID) -> JSONValue? {
        if let cached = cache[id] { return cached }
        var visiting: [SchemaID] = []
        let value = build(id, &visiting)
        cache[id] = value
        return value
    }

    private func build(_ id: SchemaID, _ visiting: inout [SchemaID]) -> JSONValue? {
        guard !visiting.contains(id) else { return nil }
        visiting.append(id)
        defer { visiting.removeLast() }
        let schema = merged(id, visiting)
        if let constValue = schema.constValue { return constValue }
        let checker = SchemaValidator(graph: graph, location: "", isRequest: false)
        if let example = schema.example, checker.validate(example, against: id, at: "").isEmpty { return example }
        if let choices = schema.enumValues, let first = choices.first(where: { $0 != .null }) ?? choices.first { return first }
        let branches = schema.oneOf.isEmpty ? schema.anyOf : schema.oneOf
        if schema.types == nil || schema.types == ["null"], !branches.isEmpty {
            var first: JSONValue?
            for branch in branches {
                guard let value = build(branch, &visiting) else { continue }
                let candidate = withDiscriminator(value, schema, branch)
                if checker.validate(candidate, against: id, at: "").isEmpty { return candidate }
                first = first ?? candidate
            }
            return first
        }
        switch schema.types?.first(where: { $0 != "null" }) ?? inferredType(schema) {
        case "object": return object(schema, &visiting)
        case "array": return array(schema, &visiting)
        case "string": return .string(string(schema))
        case "integer": return .integer(integer(schema))
        case "number": return number(schema)
        case "boolean": return .bool(true)
        case "null": return .null
        default: return nil  // `type: []`: no value is valid
        }
    }

    /// The schema with its `allOf` members folded in (recursively): properties and `required`
    /// united, the first bound, format or example found kept.
    private func merged(_ id: SchemaID, _ visiting: [SchemaID]) -> Schema {
        var schema = graph[id]
        var pending = schema.allOf
        var seen: Set<SchemaID> = [id]
        schema.allOf = []
        while !pending.isEmpty {
            let memberID = pending.removeFirst()
            guard seen.insert(memberID).inserted, !visiting.contains(memberID) else { continue }
            let member = graph[memberID]
            pending += member.allOf
            if let types = member.types { schema.types = schema.types.map { $0.filter(types.contains) } ?? types }
            for property in member.properties where schema.property(property.name) == nil { schema.properties.append(property) }
            for name in member.required where !schema.required.contains(name) { schema.required.append(name) }
            schema.forbidsAdditionalProperties = schema.forbidsAdditionalProperties || member.forbidsAdditionalProperties
            schema.additionalProperties = schema.additionalProperties ?? member.additionalProperties
            schema.enumValues = schema.enumValues ?? member.enumValues
            schema.constValue = schema.constValue ?? member.constValue
            schema.format = schema.format ?? member.format
            schema.minimum = schema.minimum ?? member.minimum
            schema.maximum = schema.maximum ?? member.maximum
            schema.exclusiveMinimum = schema.exclusiveMinimum ?? member.exclusiveMinimum
            schema.exclusiveMaximum = schema.exclusiveMaximum ?? member.exclusiveMaximum
            schema.multipleOf = schema.multipleOf ?? member.multipleOf
            schema.minLength = max(schema.minLength, member.minLength)
            schema.maxLength = schema.maxLength ?? member.maxLength
            schema.pattern = schema.pattern ?? member.pattern
            schema.items = schema.items ?? member.items
            schema.minItems = max(schema.minItems, member.minItems)
            schema.minProperties = max(schema.minProperties, member.minProperties)
            if schema.oneOf.isEmpty && schema.anyOf.isEmpty { (schema.oneOf, schema.anyOf) = (member.oneOf, member.anyOf) }
            schema.discriminator = schema.discriminator ?? member.discriminator
        }
        return schema
    }

    private func inferredType(_ schema: Schema) -> String {
        if !schema.properties.isEmpty || !schema.required.isEmpty || schema.additionalProperties != nil || schema.minProperties > 0 {
            return "object"
        }
        if schema.items != nil || !schema.prefixItems.isEmpty || schema.minItems > 0 { return "array" }
        if schema.format == "int32" || schema.format == "int64" { return "integer" }
        if schema.minimum != nil || schema.maximum != nil || schema.exclusiveMinimum != nil || schema.exclusiveMaximum != nil
            || schema.multipleOf != nil { return "number" }
        return "string"
    }

    /// With a discriminator, the chosen member's name in its property.
    private func withDiscriminator(_ value: JSONValue, _ schema: Schema, _ branch: SchemaID) -> JSONValue {
        guard let discriminator = schema.discriminator, case .object(var members) = value,
              let tag = discriminator.mapping.first(where: { $0.schema == branch })?.value else { return value }
        members.removeAll { $0.key == discriminator.property }
        members.insert((discriminator.property, .string(tag)), at: 0)
        return .object(members)
    }

    private func object(_ schema: Schema, _ visiting: inout [SchemaID]) -> JSONValue? {
        var members: [(key: String, value: JSONValue)] = []
        let optionalToo = visiting.count <= Self.optionalPropertiesDepth
        for (name, property) in schema.properties where !graph[property].writeOnly {
            let required = schema.required.contains(name)
            guard required || optionalToo else { continue }
            if let value = build(property, &visiting) {
                members.append((name, value))
            } else if required {
                guard let smallest = smallest(property) else { return nil }
                members.append((name, smallest))
            }
        }
        for name in schema.required where !members.contains(where: { $0.key == name }) && schema.property(name) == nil {
            members.append((name, schema.additionalProperties.flatMap { build($0, &visiting) } ?? .string("string")))
        }
        var extra = 1
        while members.count < schema.minProperties && !schema.forbidsAdditionalProperties {
            members.append(("property\(extra)", schema.additionalProperties.flatMap { build($0, &visiting) } ?? .string("string")))
            extra += 1
        }
        return .object(members)
    }

    /// A required value that would recurse: `null` when allowed, else an empty array or object.
    private func smallest(_ id: SchemaID) -> JSONValue? {
        let schema = graph[id]
        if schema.nullable || schema.types?.contains("null") == true { return .null }
        if schema.allows(type: "array"), schema.minItems == 0, schema.types != nil { return .array([]) }
        return nil
    }

    private func array(_ schema: Schema, _ visiting: inout [SchemaID]) -> JSONValue? {
        var items: [JSONValue] = []
        for prefix in schema.prefixItems {
            guard let value = build(prefix, &visiting) else { break }
            items.append(value)
        }
        let count = max(schema.minItems, schema.prefixItems.isEmpty ? 1 : 0)
        if items.count < count {
            guard let item = schema.items.map({ build($0, &visiting) }) ?? .string("string") else {
                return schema.minItems <= items.count ? .array(items) : nil
            }
            for index in items.count..<count { items.append(schema.uniqueItems ? variant(of: item, index) : item) }
        }
        if let maximum = schema.maxItems, items.count > maximum { items.removeLast(items.count - maximum) }
        return .array(items)
    }

    /// Another value like `value`, for `uniqueItems`.
    private func variant(of value: JSONValue, _ index: Int) -> JSONValue {
        switch value {
        case .integer(let integer): .integer(integer + index)
        case .number(let number): .number(number + Double(index))
        case .string(let string) where index > 0: .string(string + String(index))
        default: value
        }
    }

    private func integer(_ schema: Schema) -> Int {
        var low = schema.minimum.flatMap(Self.ceiling) ?? Int.min
        if let bound = schema.exclusiveMinimum.flatMap(Self.floor) { low = max(low, bound + 1) }
        var high = schema.maximum.flatMap(Self.floor) ?? Int.max
        if let bound = schema.exclusiveMaximum.flatMap(Self.ceiling) { high = min(high, bound - 1) }
        if schema.format == "int32" { (low, high) = (max(low, Int(Int32.min)), min(high, Int(Int32.max))) }
        var value = low == Int.min ? min(1, high) : low
        if case .integer(let step)? = schema.multipleOf, step > 0 {
            let (quotient, remainder) = value.quotientAndRemainder(dividingBy: step)
            value = (quotient + (remainder > 0 ? 1 : 0)) * step
        }
        return value
    }

    private func number(_ schema: Schema) -> JSONValue {
        let low = (schema.minimum ?? schema.exclusiveMinimum)?.numericValue
        let high = (schema.maximum ?? schema.exclusiveMaximum)?.numericValue
        var value = low.map { $0 + (schema.exclusiveMinimum != nil ? 0.5 : 0) } ?? 1.5
        if let high, value > high { value = (low.map { ($0 + high) / 2 }) ?? high - (schema.exclusiveMaximum != nil ? 0.5 : 0) }
        if let step = schema.multipleOf?.numericValue, step > 0 { value = (value / step).rounded(.up) * step }
        return Int(exactly: value).map(JSONValue.integer) ?? .number(value)
    }

    private static func ceiling(_ bound: JSONValue) -> Int? {
        if case .integer(let value) = bound { return value }
        return bound.numericValue.flatMap { Int(exactly: $0.rounded(.up)) }
    }

    private static func floor(_ bound: JSONValue) -> Int? {
        if case .integer(let value) = bound { return value }
        return bound.numericValue.flatMap { Int(exactly: $0.rounded(.down)) }
    }

    private func string(_ schema: Schema) -> String {
        let sample: String = switch schema.format {
        case "date": "2024-01-15"
        case "date-time": "2024-01-15T09:30:00Z"
        case "time": "09:30:00Z"
        case "email": "user@example.com"
        case "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        case "uri", "url", "uri-reference": "https://example.com/"
        case "hostname": "example.com"
        case "ipv4": "192.0.2.1"
        case "ipv6": "2001:db8::1"
        case "byte": "c3RyaW5n"
        default: "string"
        }
        // A pattern is not turned into a string; a few plain candidates are tried against it.
        let candidates = [sample, "a", "A", "0", "abc", "a-1", "example", "ABC", "a_1", "0000", "a@b.c"]
        let fitted = candidates.map { fit($0, schema) }
        return fitted.first { candidate in schema.pattern?.matches(candidate) ?? true } ?? fitted[0]
    }

    private func fit(_ text: String, _ schema: Schema) -> String {
        let length = text.unicodeScalars.count
        let padded = length < schema.minLength ? text + String(repeating: text.last.map(String.init) ?? "x", count: schema.minLength - length) : text
        return schema.maxLength.map { String(String.UnicodeScalarView(padded.unicodeScalars.prefix($0))) } ?? padded
    }
}
