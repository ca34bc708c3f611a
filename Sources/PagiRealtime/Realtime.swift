import NIOCore
import NIOPosix
import PagiConfig
import Mustache
import PagiCore

/// The realtime built-ins: `sse` and `publish` handlers, and the channel broker they share.
public enum Realtime {
    /// Hubs keep listening this long after their last SSE client left, for clients that resume.
    static let hubLinger = TimeAmount.seconds(60)

    /// The broker named by `pubsub` (contract §2.3); made once per compiled config.
    public static func makeBroker(_ config: Config) -> any ChannelBroker {
        guard let endpoint = RedisEndpoint(url: config.pubsub) else { return MemoryChannelBroker() }
        return RedisChannelBroker(endpoint: endpoint)
    }

    /// Handler makers by handler name, all on `broker`.
    public static func makers(broker: any ChannelBroker) -> [String: HandlerFactory.Maker] {
        [
            "sse": { options, pattern, location in try makeSSE(options, pattern: pattern, location: location, broker: broker) },
            "publish": { options, pattern, location in
                PublishHandler(channel: try channelName(options.scalarText ?? "", pattern: pattern, location: location), broker: broker)
            },
        ]
    }

    private static func makeSSE(_ options: ConfigValue, pattern: String, location: SourceLocation,
                                broker: any ChannelBroker) throws -> any Handler {
        let sseOptions = SSEOptions(options)
        if let channel = options["subscribe"]?.scalarText {
            let hubs = ChannelHubs(broker: broker, replay: sseOptions.replay, linger: hubLinger,
                                   housekeeping: MultiThreadedEventLoopGroup.singleton.next())
            return SSEHandler(source: .channel(try channelName(channel, pattern: pattern, location: location), hubs),
                              options: sseOptions)
        }
        let ticker = options["ticker"]
        let every = ticker?["every"]?.durationValue ?? .seconds(1)
        guard every > .zero else { throw configError("ticker 'every' must be more than 0", at: location) }
        let event = ticker?["event"]?.scalarText
        if let event, event.contains(where: \.isNewline) {
            throw configError("ticker 'event' must be one line", at: location)
        }
        let data: MustacheTemplate
        do {
            data = try Ticker.compile(ticker?["data"]?.scalarText ?? "{{now}}")
        } catch {
            throw configError("ticker 'data' is not a valid template: \(error)", at: location)
        }
        return SSEHandler(source: .ticker(Ticker(every: every, data: data, event: event)), options: sseOptions)
    }

    private static func channelName(_ template: String, pattern: String, location: SourceLocation) throws -> ChannelName {
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
