import PagiConfig

/// A step of a `body_json` path: `.name` or `[index]`.
enum JSONPathStep: Sendable, Equatable {
    case key(String)
    case index(Int)

    /// Parses `$`, `$.user.role`, `$.items[0].id`, `$[2]`; nil when the path is malformed.
    static func parse(_ path: String) -> [JSONPathStep]? {
        guard path.hasPrefix("$") else { return nil }
        var steps: [JSONPathStep] = []
        var rest = path.dropFirst()
        while let first = rest.first {
            if first == "." {
                let name = rest.dropFirst().prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return nil }
                steps.append(.key(String(name)))
                rest = rest.dropFirst(1 + name.count)
            } else if first == "[" {
                guard let close = rest.firstIndex(of: "]"), let index = Int(rest[rest.index(after: rest.startIndex)..<close]),
                      index >= 0
                else { return nil }
                steps.append(.index(index))
                rest = rest[rest.index(after: close)...]
            } else {
                return nil
            }
        }
        return steps
    }
}

/// What one request offers to route conditions, computed at most once and only when a
/// condition asks for it. Always used with the same request.
struct RequestFacts {
    private var queryItems: [String: String]?
    /// Taken from the request's context when a reader parsed the body already; routing hands its
    /// own parse on to the handler.
    private(set) var parsedJSONBody: ParsedJSONBody?

    mutating func queryItem(_ name: String, of request: Request) -> String? {
        if let queryItems { return queryItems[name] }
        let items = request.queryItems
        queryItems = items
        return items[name]
    }

    /// The JSON request body, or nil when the body is not JSON.
    mutating func json(of request: Request) -> JSONValue? {
        if let parsedJSONBody { return parsedJSONBody.value }
        let parsed = request.context.parsedJSONBody ?? ParsedJSONBody(parsing: request.body)
        parsedJSONBody = parsed
        return parsed.value
    }
}

/// A route as the trie holds it: the compiled route plus what matching needs. A class, so that
/// walking the trie moves one reference instead of copying the whole route.
final class RouteEntry: Sendable {
    let route: CompiledRoute
    /// Position in the host's route list (file order).
    let order: Int
    let conditionCount: Int
    let parameterNames: [String]
    let restName: String?
    let bodyPaths: [(steps: [JSONPathStep], path: String, value: ConfigValue)]

    enum Verdict { case accepted, failsOnlyMethod, rejected }

    init(route: CompiledRoute, order: Int, conditionCount: Int, parameterNames: [String], restName: String?,
         bodyPaths: [(steps: [JSONPathStep], path: String, value: ConfigValue)]) {
        self.route = route
        self.order = order
        self.conditionCount = conditionCount
        self.parameterNames = parameterNames
        self.restName = restName
        self.bodyPaths = bodyPaths
    }

    func verdict(_ request: Request, _ facts: inout RequestFacts) -> Verdict {
        let methodHolds = acceptsMethod(request.method)
        // Evaluated even when the method fails: a failure on the method alone makes a 405, not a 404.
        let othersHold = unmetHeader(request) == nil && unmetQuery(request, &facts) == nil && unmetBody(request, &facts) == nil
        switch (methodHolds, othersHold) {
        case (true, true): return .accepted
        case (false, true): return .failsOnlyMethod
        default: return .rejected
        }
    }

    func acceptsMethod(_ method: String) -> Bool { route.methods?.contains(method) ?? true }

    /// The first required header whose exact value is absent.
    func unmetHeader(_ request: Request) -> (name: String, expected: String)? {
        route.headers.first { name, expected in
            !request.headers.contains { $0.name.asciiCaseInsensitiveEquals(name) && $0.value == expected }
        }.map { (name: $0.key, expected: $0.value) }
    }

    /// The first required query parameter whose decoded value differs.
    func unmetQuery(_ request: Request, _ facts: inout RequestFacts) -> (name: String, expected: String, actual: String?)? {
        for (name, expected) in route.query {
            let actual = facts.queryItem(name, of: request)
            if actual != expected { return (name, expected, actual) }
        }
        return nil
    }

    enum BodyMiss { case notJSON, mismatch(path: String, expected: ConfigValue, actual: JSONValue?) }

    func unmetBody(_ request: Request, _ facts: inout RequestFacts) -> BodyMiss? {
        guard !bodyPaths.isEmpty else { return nil }
        guard let json = facts.json(of: request) else { return .notJSON }
        for condition in bodyPaths {
            let actual = Self.value(at: condition.steps, in: json)
            if let actual, Self.jsonValue(actual, equals: condition.value) { continue }
            return .mismatch(path: condition.path, expected: condition.value, actual: actual)
        }
        return nil
    }

    /// The route's parameters from the values captured positionally by the trie.
    /// With `decoding`, the path kept encoded separators (`Request.pathHasEncodedSeparators`):
    /// each value is decoded, so a `{param}` holds the `/` its segment carried.
    func parameters(captures: [Substring], rest: Substring?, decoding: Bool = false) -> [String: String] {
        func value(_ text: Substring) -> String { decoding ? PercentDecoding.decode(String(text)) ?? String(text) : String(text) }
        var parameters: [String: String] = [:]
        for (name, captured) in zip(parameterNames, captures) { parameters[name] = value(captured) }
        if let restName { parameters[restName] = rest.map(value) ?? "" }
        return parameters
    }

    static func value(at steps: [JSONPathStep], in json: JSONValue) -> JSONValue? {
        var current = json
        for step in steps {
            switch step {
            case .key(let key):
                guard let next = current[key] else { return nil }
                current = next
            case .index(let index):
                guard case .array(let items) = current, index < items.count else { return nil }
                current = items[index]
            }
        }
        return current
    }

    /// Compares a JSON value with a YAML scalar: numbers by value (YAML `1` equals JSON `1` and
    /// `1.0`), strings, booleans and null by type and value; a YAML string never equals a JSON number.
    static func jsonValue(_ json: JSONValue, equals expected: ConfigValue) -> Bool {
        switch (expected, json) {
        case (.null, .null): return true
        case (.bool(let flag), .bool(let actual)): return flag == actual
        case (.int(let integer), _): return json == .integer(integer)
        case (.double(let double), _): return json == .number(double)
        case (.string(let string), .string(let actual)): return string == actual
        // Also lists and maps: the loader accepts only scalars under `body_json`.
        default: return false
        }
    }
}
