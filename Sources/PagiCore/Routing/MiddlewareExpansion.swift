import PagiConfig

/// Expands middleware lists: named stacks are replaced by their items, recursively, and the
/// built-in items are turned into middleware objects.
struct MiddlewareExpansion {
    struct Chain {
        var names: [String] = []
        var middleware: [any Middleware] = []
        /// The smallest `body_limit` in the chain.
        var bodyLimit: Int?

        static func + (outer: Chain, inner: Chain) -> Chain {
            Chain(names: outer.names + inner.names, middleware: outer.middleware + inner.middleware,
                  bodyLimit: [outer.bodyLimit, inner.bodyLimit].compactMap { $0 }.min())
        }
    }

    private let stacks: [String: [MiddlewareItem]]
    /// Each stack flattened to built-in items once, so a broken stack is reported once.
    private var flattenedStacks: [String: [MiddlewareItem]] = [:]
    private(set) var diagnostics: [Diagnostic] = []

    init(stacks: [String: [MiddlewareItem]]) { self.stacks = stacks }

    /// Builds fresh objects for every use of a list, so that e.g. two routes using the same
    /// stack do not share one rate-limit bucket.
    mutating func chain(_ items: [MiddlewareItem], _ makeMiddleware: (MiddlewareSpec) -> any Middleware) -> Chain {
        var chain = Chain()
        for item in flatten(items, enclosingStacks: []) {
            guard case .builtin(let spec) = item.kind else { continue }
            chain.names.append(item.name)
            chain.middleware.append(makeMiddleware(spec))
            if case .bodyLimit(let limit) = spec { chain.bodyLimit = min(limit, chain.bodyLimit ?? limit) }
        }
        return chain
    }

    private mutating func flatten(_ items: [MiddlewareItem], enclosingStacks: [String]) -> [MiddlewareItem] {
        items.flatMap { item -> [MiddlewareItem] in
            guard case .stack(let name) = item.kind else { return [item] }
            if let flattened = flattenedStacks[name] { return flattened }
            if enclosingStacks.contains(name) {
                let cycle = (enclosingStacks + [name]).joined(separator: " → ")
                diagnostics.append(Diagnostic(.error, "middleware stack '\(name)' includes itself (\(cycle))", at: item.location))
                return []
            }
            guard let stack = stacks[name] else {
                let known = stacks.keys.sorted().joined(separator: ", ")
                let hint = known.isEmpty ? "no stacks are defined under top-level 'middleware:'" : "defined stacks: \(known)"
                diagnostics.append(Diagnostic(.error, "unknown middleware stack '\(name)' (\(hint))", at: item.location))
                return []
            }
            let flattened = flatten(stack, enclosingStacks: enclosingStacks + [name])
            flattenedStacks[name] = flattened
            return flattened
        }
    }
}
