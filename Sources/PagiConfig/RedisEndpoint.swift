import Foundation

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]` (docs/configuration.md §6).
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: Int
    public var user: String?
    public var password: String?

    public init?(url text: String) {
        guard let components = URLComponents(string: text), components.scheme == "redis",
              let host = components.host, !host.isEmpty
        else { return nil }
        self.host = host
        port = components.port ?? 6379
        let path = components.path.drop { $0 == "/" }
        if path.isEmpty {
            database = 0
        } else {
            guard let database = Int(path), database >= 0 else { return nil }
            self.database = database
        }
        user = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        password = components.password?.removingPercentEncoding
    }

    /// The commands that open a session: AUTH when a password is given, SELECT for a database other than 0.
    public var handshake: [[String]] {
        var commands: [[String]] = []
        if let password { commands.append(user.map { ["AUTH", $0, password] } ?? ["AUTH", password]) }
        if database != 0 { commands.append(["SELECT", String(database)]) }
        return commands
    }

    /// Never shows the password (this ends up in logs and error messages).
    public var description: String { "redis://\(host):\(port)/\(database)" }
}
