import EmbedStarConfig
import EmbedStarCore
import Foundation
import Logging

/// The plugins a configuration selects, built from a registry: the composition root every
/// command starts from. A library of its own (not Core, which names no plugin and builds none,
/// and not an executable) so tests and `embed-star-bench` wire a registry exactly as
/// `embed-star` does.
public struct Runtime: Sendable {
    public let configuration: LoadedConfiguration
    /// The configured provider behind the breaker, limiter, retries and vector checks of
    /// `resilience:` (``ProtectedProvider/base`` is the plugin itself).
    public let provider: ProtectedProvider
    public let store: any RepoStore
    public let instanceID: String
    public let logger: Logger
    /// Vectors by content hash (`resilience.cache`); nil when turned off.
    public let cache: EmbeddingCache?

    public static func build(_ configuration: LoadedConfiguration, registry: PluginRegistry, logger: Logger) async throws -> Runtime {
        let unclaimed = try registry.validate(configuration, decodingSelected: false)
        for section in unclaimed {
            logger.debug("configuration section has no registered plugin; ignored", metadata: ["section": "\(section)"])
        }
        let instanceID = configuration.settings.pipeline.instanceID ?? Self.defaultInstanceID()
        let resilience = configuration.settings.resilience
        // Built before the provider, so the provider's rate-limit headers reach it.
        let limiter = RateLimiter(requestsPerMinute: resilience.rateLimit.requestsPerMinute, tokensPerMinute: resilience.rateLimit.tokensPerMinute)
        let context = PluginContext(logger: logger, directory: configuration.directory, instanceID: instanceID,
                                    rateLimitObserver: { limiter.observe($0) })
        let plugin = try await registry.makeProvider(configuration, context: context)
        let provider = ProtectedProvider(plugin, name: configuration.settings.provider, resilience: resilience, limiter: limiter, logger: logger)
        let store = try await registry.makeStore(configuration, context: context)
        return Runtime(configuration: configuration, provider: provider, store: store, instanceID: instanceID, logger: logger,
                       cache: resilience.cache.make())
    }

    /// Builds the runtime, runs `body` with it, and shuts the store down afterwards, whether
    /// `body` returns or throws: the one scope every command runs in.
    public static func with<T>(_ configuration: LoadedConfiguration, registry: PluginRegistry, logger: Logger,
                               _ body: (Runtime) async throws -> T) async throws -> T {
        let runtime = try await build(configuration, registry: registry, logger: logger)
        let value: T
        do {
            value = try await body(runtime)
        } catch {
            await runtime.store.shutdown()
            throw error
        }
        await runtime.store.shutdown()
        return value
    }

    /// Prepares store and provider and returns a pipeline over them.
    /// - Parameter activity: where the pipeline reports liveness and progress; pass the one the
    ///   monitoring server reads when it is up before the pipeline.
    public func startPipeline(activity: PipelineActivity = PipelineActivity()) async throws -> Pipeline {
        let settings = configuration.settings
        var pipelineLogger = logger
        pipelineLogger[metadataKey: "instance"] = "\(instanceID)"
        return try await Pipeline.start(
            provider: provider, providerName: settings.provider, store: store,
            configuration: settings.pipeline, text: settings.text, cache: cache, rateLimit: settings.resilience.rateLimit, activity: activity,
            instanceID: instanceID, logger: pipelineLogger)
    }

    /// The model identity this configuration embeds with, as the pipeline computes it (the
    /// provider is asked about its model, which costs no embedding).
    public func modelIdentity() async throws -> String {
        try await document().modelIdentity
    }

    /// The texts, prefixes and model identity of this configuration's model, as the pipeline
    /// builds them (the provider is asked about its model, which costs no embedding).
    public func document() async throws -> DocumentText {
        try DocumentText(providerName: configuration.settings.provider, model: try await provider.prepare(), text: configuration.settings.text,
                         tokenCount: { [provider] in provider.tokenCount($0) })
    }

    /// The host name, the process id and a random part: containers often run as pid 1 under a
    /// fixed host name, and two instances with one id would share their leases.
    public static func defaultInstanceID() -> String {
        let random = (0..<6).map { _ in String(UInt8.random(in: 0..<36), radix: 36) }.joined()
        return "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(random)"
    }
}
