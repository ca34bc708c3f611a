/// JSON text of a value tree, keys in their order (what `pagi-serve schema` prints).
extension ConfigValue {
    public func jsonText(indent: Int = 2) -> String {
        var out = ""
        write(to: &out, indent: indent, depth: 0)
        return out
    }

    private func write(to out: inout String, indent: Int, depth: Int) {
        let pad = String(repeating: " ", count: indent * (depth + 1))
        let closePad = String(repeating: " ", count: indent * depth)
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .double(let value): out += value.isFinite ? String(value) : "null"
        case .string(let text): out += TextEscaping.jsonString(text)
        case .list(let items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += pad
                item.write(to: &out, indent: indent, depth: depth + 1)
                out += index == items.count - 1 ? "\n" : ",\n"
            }
            out += closePad + "]"
        case .map(let pairs):
            guard !pairs.isEmpty else { out += "{}"; return }
            out += "{\n"
            for (index, pair) in pairs.enumerated() {
                out += pad + TextEscaping.jsonString(pair.key) + ": "
                pair.value.write(to: &out, indent: indent, depth: depth + 1)
                out += index == pairs.count - 1 ? "\n" : ",\n"
            }
            out += closePad + "}"
        }
    }
}
