import PagiConfig

/// What walks over the patterns matching a request (see `RouteTrie.forEachMatch`).
protocol RouteMatchVisitor {
    /// Returns true to stop the walk.
    mutating func visit(_ match: RouteTrie.Match, of request: Request) -> Bool
}

/// One host's routes as a segment trie: lookup walks the path once, segment by segment, trying
/// at each node the literal child before the parameter child before the node's tail, which is
/// exactly the precedence of docs/configuration.md §8.3 (literal > `{param}` > `{rest...}`/subtree, exact
/// > subtree, longer subtree > shorter), so matches come out most specific first.
struct RouteTrie: Sendable {
    struct Node: Sendable {
        var literalChildren: [Substring: Int] = [:]
        var parameterChild: Int?
        /// Routes whose pattern ends at this node, each list ordered for trying (§4.2.3).
        var exactRoutes: [RouteEntry] = []
        var tailRoutes: [RouteEntry] = []
    }

    enum MatchKind: Equatable {
        /// The pattern ends where the path ends.
        case exact
        /// A subtree or `{rest...}` pattern covering the remaining segments (`rest`, possibly empty).
        case tail
        /// A subtree pattern whose root is the path plus a trailing slash (`/docs/` for `/docs`).
        case subtreeRootWithoutSlash
    }

    struct Match {
        let kind: MatchKind
        let node: Int
        let routes: [RouteEntry]
        /// Values of the single-segment parameters, in pattern order.
        let captures: [Substring]
        /// What a tail covers, without the leading slash; nil for exact matches.
        let rest: Substring?

        /// Go's ServeMux notion, used for the trailing-slash rule: nothing beyond the pattern.
        var isExact: Bool { kind == .exact || rest?.isEmpty == true }
    }

    private(set) var nodes = [Node()]
    /// A subtree or `{rest...}` pattern below the root exists. Only such a pattern can be a
    /// subtree rooted at a request's path plus a slash: without one, lookup skips that second walk.
    private(set) var hasTailsBelowRoot = false

    /// Adds `entry` under `pattern`; returns the route already there that it conflicts with:
    /// one with the same pattern shape and the same conditions (§4.2.2).
    mutating func insert(_ entry: RouteEntry, pattern: RoutePattern, sameConditions: (RouteEntry, RouteEntry) -> Bool) -> RouteEntry? {
        var node = 0
        for segment in pattern.segments {
            switch segment {
            case .literal(let text):
                node = child(of: node, existing: nodes[node].literalChildren[text]) { $0.literalChildren[text] = $1 }
            case .parameter:
                node = child(of: node, existing: nodes[node].parameterChild) { $0.parameterChild = $1 }
            }
        }
        let isTail = pattern.ending != .exact
        if isTail && node != 0 { hasTailsBelowRoot = true }
        let existing = isTail ? nodes[node].tailRoutes : nodes[node].exactRoutes
        if let conflict = existing.first(where: { sameConditions($0, entry) }) { return conflict }
        // More conditions first, then file order (§4.2.3); entries arrive in file order.
        var routes = existing
        let position = routes.firstIndex { $0.conditionCount < entry.conditionCount } ?? routes.endIndex
        routes.insert(entry, at: position)
        if isTail { nodes[node].tailRoutes = routes } else { nodes[node].exactRoutes = routes }
        return nil
    }

    private mutating func child(of parent: Int, existing: Int?, link: (inout Node, Int) -> Void) -> Int {
        if let existing { return existing }
        nodes.append(Node())
        link(&nodes[parent], nodes.count - 1)
        return nodes.count - 1
    }

    /// Shows `visitor` every pattern matching the request's path, most specific first, until it
    /// says stop. The path is normalised and starts with `/`.
    func forEachMatch<Visitor: RouteMatchVisitor>(of request: Request, _ visitor: inout Visitor) {
        let path = request.path
        guard path.utf8.first == UInt8(ascii: "/") else { return }
        var captures: [Substring] = []
        _ = walk(node: 0, request: request, from: path.utf8.index(after: path.startIndex), captures: &captures, &visitor)
    }

    /// `position` is where the next segment starts, nil when no segment is left. Returns true when
    /// the visitor stopped the walk. The request goes down the recursion borrowed, never copied.
    private func walk<Visitor: RouteMatchVisitor>(node index: Int, request: Request, from position: String.Index?,
                                                  captures: inout [Substring], _ visitor: inout Visitor) -> Bool {
        guard let position else {
            if !nodes[index].exactRoutes.isEmpty,
               visitor.visit(Match(kind: .exact, node: index, routes: nodes[index].exactRoutes, captures: captures, rest: nil),
                             of: request) {
                return true
            }
            return !nodes[index].tailRoutes.isEmpty
                && visitor.visit(Match(kind: .subtreeRootWithoutSlash, node: index, routes: nodes[index].tailRoutes,
                                       captures: captures, rest: ""), of: request)
        }
        let (segment, next) = Self.segment(of: request.path, at: position)
        if let child = nodes[index].literalChildren[segment],
           walk(node: child, request: request, from: next, captures: &captures, &visitor) {
            return true
        }
        if let child = nodes[index].parameterChild, !segment.isEmpty {
            captures.append(segment)
            if walk(node: child, request: request, from: next, captures: &captures, &visitor) { return true }
            captures.removeLast()
        }
        let rest = Substring(request.path.unicodeScalars[position...])
        return !nodes[index].tailRoutes.isEmpty
            && visitor.visit(Match(kind: .tail, node: index, routes: nodes[index].tailRoutes, captures: captures, rest: rest),
                             of: request)
    }

    /// The segment starting at `position` and where the one after it starts. Works on scalars,
    /// not characters, so a combining mark after a `/` cannot merge two segments.
    private static func segment(of path: String, at position: String.Index) -> (Substring, String.Index?) {
        guard let slash = path.utf8[position...].firstIndex(of: UInt8(ascii: "/")) else {
            return (Substring(path.unicodeScalars[position...]), nil)
        }
        return (Substring(path.unicodeScalars[position..<slash]), path.utf8.index(after: slash))
    }
}
