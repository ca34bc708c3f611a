/// Looking into a value tree (a schema, a `json:` stub body).
extension ConfigValue {
    /// The value under `key` of a mapping.
    public subscript(_ key: String) -> ConfigValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }
}
