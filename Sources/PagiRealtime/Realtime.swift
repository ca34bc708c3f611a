import NIOCore
import NIOPosix
import PagiConfig
import Mustache
import PagiCore

/// The realtime built-ins: `sse` and `publish` handlers, and the channel broker they share.
public enum Realtime {
    /// Hubs keep listening this long after their last SSE client left, for clients that resume.
    static let hubLinger = TimeAmount.seconds(60)

    /// The broker named by `pubsub` (docs/configuration.md §6); made once per compiled config.
    public static func makeBroker(_ config: Config) -> any ChannelBroker {
        guard let endpoint = RedisEndpoint(url: config.pubsub) else { return MemoryChannelBroker() }
        return RedisChannelBroker(endpoint: endpoint)
    }

    /// The `sse` handler of one route (docs/configuration.md §9.6), on `broker`.
    public static func sse(_ options: SSEConfig, pattern: RoutePattern, location: SourceLocation,
                           broker: any ChannelBroker) throws -> any Handler {
        switch options.source {
        case .subscribe(let channel):
            let hubs = ChannelHubs(broker: broker, replay: options.replay, linger: hubLinger,
                                   housekeeping: MultiThreadedEventLoopGroup.singleton.next())
            return SSEHandler(source: .channel(try channelName(channel, pattern: pattern, location: location), hubs), options: options)
        case .ticker(let every, let data, let event):
            let template: MustacheTemplate
            do {
                template = try Ticker.compile(data)
            } catch {
                throw configError("ticker 'data' is not a valid template: \(error)", at: location)
            }
            return SSEHandler(source: .ticker(Ticker(every: every, data: template, event: event)), options: options)
        }
    }

    /// The `publish` handler of one route (docs/configuration.md §9.7), on `broker`.
    public static func publish(channel: String, pattern: RoutePattern, location: SourceLocation,
                               broker: any ChannelBroker) throws -> any Handler {
        PublishHandler(channel: try channelName(channel, pattern: pattern, location: location), broker: broker)
    }

    private static func channelName(_ template: String, pattern: RoutePattern, location: SourceLocation) throws -> ChannelName {
        do {
            return try ChannelName(template, pattern: pattern)
        } catch {
            throw configError(error.description, at: location)
        }
    }

    private static func configError(_ message: String, at location: SourceLocation) -> ConfigError {
        ConfigError(diagnostics: [Diagnostic(.error, message, at: location)])
    }
}
