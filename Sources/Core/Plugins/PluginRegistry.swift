import EmbedStarConfig
import Foundation
import Logging

/// What a plugin gets besides its own configuration section.
public struct PluginContext: Sendable {
    public var logger: Logger
    /// The folder of the configuration file: relative paths in a section are resolved against it.
    public var directory: URL
    /// This instance's name, as used for leases.
    public var instanceID: String
    /// Receives what providers learn from rate-limit headers, for the rate limiter.
    public var rateLimitObserver: @Sendable (RateLimitHint) -> Void

    public init(
        logger: Logger, directory: URL, instanceID: String,
        rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }
    ) {
        self.logger = logger
        self.directory = directory
        self.instanceID = instanceID
        self.rateLimitObserver = rateLimitObserver
    }

    /// `path` resolved against ``directory`` unless it is absolute.
    public func resolve(_ path: String) -> URL {
        ConfigPath.resolve(path, against: directory)
    }
}

/// Builds a plugin from its own configuration section; registered by name.
///
/// `Configuration` is the plugin's section type: its keys are read off the type (for `plugins
/// --verbose` and unknown-key errors), so a plugin declares its configuration and never parses
/// YAML itself.
public struct PluginFactory<Plugin: Sendable>: Sendable {
    public let name: String
    public let summary: String
    /// The metrics the plugin emits beyond Core's (``MetricNames``), with their help text.
    public let metrics: [MetricDescription]
    let validate: @Sendable (ConfigNode, String, Bool, URL) throws -> Void
    let build: @Sendable (ConfigNode, String, PluginContext) async throws -> Plugin
    /// The keys of its configuration section, read off its configuration type.
    public let keys: @Sendable () -> [ConfigKeyInfo]
    /// The key each command-line flag sets in its section (``PluginConfiguration/flagKeys``).
    public let flagKeys: [PluginFlag: String]

    public init<Configuration: PluginConfiguration>(
        name: String,
        summary: String,
        configuration: Configuration.Type,
        metrics: [MetricDescription] = [],
        make: @escaping @Sendable (Configuration, PluginContext) async throws -> Plugin
    ) {
        self.name = name
        self.summary = summary
        self.metrics = metrics
        validate = { node, path, selected, directory in try validateSection(Configuration.self, node, path, selected, directory: directory) }
        keys = { ConfigSchema.describe(Configuration.self) }
        flagKeys = Configuration.flagKeys
        build = { node, path, context in
            let decoder = ConfigDecoder(directory: context.directory)
            try decoder.checkKeys(Configuration.self, in: node, path: path)
            return try await make(try decoder.decode(Configuration.self, from: node, path: path), context)
        }
    }
}

/// Builds a provider from its section.
public typealias ProviderFactory = PluginFactory<any EmbeddingProvider>
/// Builds a store from its section.
public typealias StoreFactory = PluginFactory<any RepoStore>

/// A section must hold only declared keys; the selected plugin's must also decode.
private func validateSection<T: PluginConfiguration>(_ type: T.Type, _ node: ConfigNode, _ path: String, _ selected: Bool, directory: URL) throws {
    let decoder = ConfigDecoder(directory: directory)
    try decoder.checkKeys(type, in: node, path: path)
    if selected { _ = try decoder.decode(type, from: node, path: path) }
}

/// Plugins by name. Built once by EmbedStarBuiltInPlugins (or a test); Core and the pipeline
/// only see the protocols.
public struct PluginRegistry: Sendable {
    public private(set) var providers: [String: ProviderFactory] = [:]
    public private(set) var stores: [String: StoreFactory] = [:]

    public init() {}

    /// Adds a provider; a second one of the same name is refused (one would silently replace
    /// the other, and `provider: NAME` would build whichever came last).
    public mutating func register(_ factory: ProviderFactory) throws(PluginRegistryError) {
        guard providers[factory.name] == nil else { throw PluginRegistryError(kind: "provider", name: factory.name) }
        providers[factory.name] = factory
    }

    /// Adds a store; a second one of the same name is refused.
    public mutating func register(_ factory: StoreFactory) throws(PluginRegistryError) {
        guard stores[factory.name] == nil else { throw PluginRegistryError(kind: "store", name: factory.name) }
        stores[factory.name] = factory
    }

    public func makeProvider(_ configuration: LoadedConfiguration, context: PluginContext) async throws -> any EmbeddingProvider {
        let name = configuration.settings.provider
        return try await lookup(name, in: providers, kind: "provider", configuration)
            .build(configuration.providerSection, "providers.\(name)", context)
    }

    public func makeStore(_ configuration: LoadedConfiguration, context: PluginContext) async throws -> any RepoStore {
        let name = configuration.settings.store
        return try await lookup(name, in: stores, kind: "store", configuration).build(configuration.storeSection, "stores.\(name)", context)
    }

    /// Help text for every metric: Core's and each registered plugin's.
    public var metricHelp: [String: String] {
        var help = MetricNames.help
        for metric in providers.values.flatMap(\.metrics) + stores.values.flatMap(\.metrics) { help[metric.name] = metric.help }
        return help
    }

    /// Checks the whole file without building anything: the selected plugins exist and their
    /// sections decode; the sections of other registered plugins have no unknown keys or bad
    /// values (their unset variables are not errors, as they are not used). Returns the names
    /// of configured sections no registered plugin claims, for a warning.
    /// - Parameter decodingSelected: false when the selected plugins are built next (building
    ///   decodes their sections), so each section is decoded once.
    @discardableResult
    public func validate(_ configuration: LoadedConfiguration, decodingSelected: Bool = true) throws -> [String] {
        let settings = configuration.settings
        _ = try lookup(settings.provider, in: providers, kind: "provider", configuration)
        _ = try lookup(settings.store, in: stores, kind: "store", configuration)
        var unclaimed: [String] = []
        for (name, raw) in settings.providers.sorted(by: { $0.key < $1.key }) {
            guard let factory = providers[name] else { unclaimed.append("providers.\(name)"); continue }
            try factory.validate(raw.node, "providers.\(name)", decodingSelected && name == settings.provider, configuration.directory)
        }
        if decodingSelected, settings.providers[settings.provider] == nil, let factory = providers[settings.provider] {
            try factory.validate(.emptyMapping, "providers.\(settings.provider)", true, configuration.directory)
        }
        for (name, raw) in settings.stores.sorted(by: { $0.key < $1.key }) {
            guard let factory = stores[name] else { unclaimed.append("stores.\(name)"); continue }
            try factory.validate(raw.node, "stores.\(name)", decodingSelected && name == settings.store, configuration.directory)
        }
        if decodingSelected, settings.stores[settings.store] == nil, let factory = stores[settings.store] {
            try factory.validate(.emptyMapping, "stores.\(settings.store)", true, configuration.directory)
        }
        return unclaimed
    }

    private func lookup<F>(_ name: String, in factories: [String: F], kind: String, _ configuration: LoadedConfiguration) throws(ConfigError) -> F {
        if let factory = factories[name] { return factory }
        let known = factories.keys.sorted()
        var message = "unknown \(kind) '\(name)'"
        if let guess = closestMatch(to: name, in: known) { message += "; did you mean '\(guess)'?" }
        message += " (registered \(kind)s: \(known.joined(separator: ", ")))"
        throw ConfigError(location: configuration.tree[kind]?.location, path: kind, message: message)
    }
}

/// Two plugins registered under one name.
public struct PluginRegistryError: Error, CustomStringConvertible, Sendable {
    public var kind: String
    public var name: String

    public var description: String { "a \(kind) named '\(name)' is already registered: plugin names must be unique" }
}
