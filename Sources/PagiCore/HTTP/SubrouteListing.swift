/// A handler that serves several routes of its own below its mount point (`openapi`), so
/// `pagi-serve routes` can list them under the route that mounts it.
public protocol SubrouteListing {
    var subroutes: [Subroute] { get }
}

/// A handler that loads something sizeable when the config is compiled (`openapi`: its document),
/// so `pagi-serve check` can say what it loaded and how long that took.
public protocol LoadReporting {
    /// One line, e.g. `openapi /api/: users.yaml, 4 operations, loaded in 12 ms`.
    var loadReport: String { get }
}

public struct Subroute: Sendable, Equatable {
    /// The full path pattern, mount point included (`/api/users/{id}`).
    public var pattern: String
    public var methods: [String]
    /// What serves it, e.g. `operationId=getUser`.
    public var description: String

    public init(pattern: String, methods: [String], description: String) {
        self.pattern = pattern
        self.methods = methods
        self.description = description
    }
}
