import Foundation
import Logging

/// The plugins a configuration selects, built from a registry: what every command starts from.
/// Lives in Core (not the Runner) so tests can wire a registry of their own exactly as the
/// executable does.
public struct Runtime: Sendable {
    public let configuration: LoadedConfiguration
    public let provider: any EmbeddingProvider
    public let store: any RepoStore
    public let instanceID: String
    public let logger: Logger
    /// The provider's rate limiter, circuit breaker, retries and cache; the provider feeds the
    /// limiter its rate-limit headers.
    public let protection: ProviderProtection

    public static func build(_ configuration: LoadedConfiguration, registry: PluginRegistry, logger: Logger) async throws -> Runtime {
        let unclaimed = try registry.validate(configuration)
        for section in unclaimed {
            logger.debug("configuration section has no registered plugin; ignored", metadata: ["section": "\(section)"])
        }
        let instanceID = configuration.settings.pipeline.instanceID ?? Self.defaultInstanceID()
        let protection = ProviderProtection(configuration.settings.resilience, provider: configuration.settings.provider, logger: logger)
        let context = PluginContext(logger: logger, directory: configuration.directory, instanceID: instanceID,
                                    rateLimitObserver: { protection.limiter.observe($0) })
        let provider = try await registry.makeProvider(configuration, context: context)
        let store = try await registry.makeStore(configuration, context: context)
        return Runtime(configuration: configuration, provider: provider, store: store, instanceID: instanceID, logger: logger,
                       protection: protection)
    }

    /// Prepares store and provider and returns a pipeline over them.
    public func startPipeline() async throws -> Pipeline {
        let settings = configuration.settings
        var pipelineLogger = logger
        pipelineLogger[metadataKey: "instance"] = "\(instanceID)"
        return try await Pipeline.start(
            provider: provider, providerName: settings.provider, store: store,
            configuration: settings.pipeline, text: settings.text, protection: protection, instanceID: instanceID, logger: pipelineLogger)
    }

    /// The model identity this configuration embeds with, as the pipeline computes it (the
    /// provider is asked about its model, which costs no embedding).
    public func modelIdentity() async throws -> String {
        let settings = configuration.settings
        let model = try await provider.prepare()
        return ModelIdentity.make(provider: settings.provider, model: model, prefixes: settings.text.prefixes(provider: settings.provider, model: model.name),
                                  template: settings.text.template)
    }

    public static func defaultInstanceID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}
