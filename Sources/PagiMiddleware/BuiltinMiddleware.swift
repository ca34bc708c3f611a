import PagiConfig
import PagiCore

/// Builds the object of every built-in middleware from its decoded options
/// (docs/configuration.md §10). The `switch` is exhaustive: a middleware the config language
/// names but nothing implements does not compile.
public enum BuiltinMiddleware {
    public static func make(_ spec: MiddlewareSpec) -> any Middleware {
        switch spec {
        case .headers(let options): HeadersMiddleware(options)
        case .cors(let options): CORSMiddleware(options)
        case .basicAuth(let options): BasicAuthMiddleware(options)
        case .ipFilter(let options): IPFilterMiddleware(options)
        case .rateLimit(let options): RateLimitMiddleware(options)
        case .compress(let options): CompressMiddleware(options)
        case .bodyLimit(let limit): BodyLimitMiddleware(limit: limit)
        case .requestID(let options): RequestIDMiddleware(options)
        case .rewrite(let options): RewriteMiddleware(options)
        }
    }
}
