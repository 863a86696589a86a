import AsyncHTTPClient
import Foundation
import Logging

/// What a plugin gets besides its own configuration section.
public struct PluginContext: Sendable {
    public var logger: Logger
    /// The folder of the configuration file: relative paths in a section are resolved against it.
    public var directory: URL
    /// This instance's name, as used for leases.
    public var instanceID: String
    /// The one HTTP client of the process: plugins share its connection pools.
    public var httpClient: HTTPClient
    /// Receives what providers learn from rate-limit headers, for the rate limiter.
    public var rateLimitObserver: @Sendable (RateLimitHint) -> Void

    public init(
        logger: Logger, directory: URL, instanceID: String, httpClient: HTTPClient = .shared,
        rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }
    ) {
        self.logger = logger
        self.directory = directory
        self.instanceID = instanceID
        self.httpClient = httpClient
        self.rateLimitObserver = rateLimitObserver
    }

    /// `path` resolved against ``directory`` unless it is absolute.
    public func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    }
}

/// The configuration type of a plugin: decoded from the plugin's section, every key optional
/// with a default unless the plugin cannot work without it.
public typealias PluginConfiguration = Decodable & Sendable

/// Builds a provider from its section. Register one per provider name.
public struct ProviderFactory: Sendable {
    public let name: String
    public let summary: String
    let validate: @Sendable (ConfigNode, String, Bool) throws -> Void
    let build: @Sendable (ConfigNode, String, PluginContext) async throws -> any EmbeddingProvider
    /// The keys of its configuration section, read off its configuration type.
    public let keys: @Sendable () -> [ConfigKeyInfo]

    public init<Configuration: PluginConfiguration>(
        name: String,
        summary: String,
        configuration: Configuration.Type,
        make: @escaping @Sendable (Configuration, PluginContext) async throws -> any EmbeddingProvider
    ) {
        self.name = name
        self.summary = summary
        validate = { node, path, selected in try validateSection(Configuration.self, node, path, selected) }
        keys = { ConfigSchema.describe(Configuration.self) }
        build = { node, path, context in try await make(try ConfigDecoder().decode(Configuration.self, from: node, path: path), context) }
    }
}

/// Builds a store from its section. Register one per store name.
public struct StoreFactory: Sendable {
    public let name: String
    public let summary: String
    let validate: @Sendable (ConfigNode, String, Bool) throws -> Void
    let build: @Sendable (ConfigNode, String, PluginContext) async throws -> any RepoStore
    /// The keys of its configuration section, read off its configuration type.
    public let keys: @Sendable () -> [ConfigKeyInfo]

    public init<Configuration: PluginConfiguration>(
        name: String,
        summary: String,
        configuration: Configuration.Type,
        make: @escaping @Sendable (Configuration, PluginContext) async throws -> any RepoStore
    ) {
        self.name = name
        self.summary = summary
        validate = { node, path, selected in try validateSection(Configuration.self, node, path, selected) }
        keys = { ConfigSchema.describe(Configuration.self) }
        build = { node, path, context in try await make(try ConfigDecoder().decode(Configuration.self, from: node, path: path), context) }
    }
}

/// The selected plugin's section must decode; another plugin's section only must not hold unknown keys.
private func validateSection<T: Decodable>(_ type: T.Type, _ node: ConfigNode, _ path: String, _ selected: Bool) throws {
    if selected {
        _ = try ConfigDecoder().decode(type, from: node, path: path)
    } else {
        try ConfigDecoder().checkKeys(type, in: node, path: path)
    }
}

/// Plugins by name. Built once by the Runner; Core and the pipeline only see the protocols.
public struct PluginRegistry: Sendable {
    public private(set) var providers: [String: ProviderFactory] = [:]
    public private(set) var stores: [String: StoreFactory] = [:]

    public init() {}

    public mutating func register(_ factory: ProviderFactory) {
        providers[factory.name] = factory
    }

    public mutating func register(_ factory: StoreFactory) {
        stores[factory.name] = factory
    }

    public func makeProvider(_ configuration: LoadedConfiguration, context: PluginContext) async throws -> any EmbeddingProvider {
        let name = configuration.settings.provider
        let factory = try lookup(name, in: providers, kind: "provider", configuration)
        return try await factory.build(configuration.providerSection, "providers.\(name)", context)
    }

    public func makeStore(_ configuration: LoadedConfiguration, context: PluginContext) async throws -> any RepoStore {
        let name = configuration.settings.store
        let factory = try lookup(name, in: stores, kind: "store", configuration)
        return try await factory.build(configuration.storeSection, "stores.\(name)", context)
    }

    /// Checks the whole file without building anything: the selected plugins exist and their
    /// sections decode; the sections of other registered plugins have no unknown keys or bad
    /// values (their unset variables are not errors, as they are not used). Returns the names
    /// of configured sections no registered plugin claims, for a warning.
    @discardableResult
    public func validate(_ configuration: LoadedConfiguration) throws -> [String] {
        let settings = configuration.settings
        _ = try lookup(settings.provider, in: providers, kind: "provider", configuration)
        _ = try lookup(settings.store, in: stores, kind: "store", configuration)
        var unclaimed: [String] = []
        for (name, raw) in settings.providers.sorted(by: { $0.key < $1.key }) {
            guard let factory = providers[name] else { unclaimed.append("providers.\(name)"); continue }
            try factory.validate(raw.node, "providers.\(name)", name == settings.provider)
        }
        if settings.providers[settings.provider] == nil, let factory = providers[settings.provider] {
            try factory.validate(.emptyMapping, "providers.\(settings.provider)", true)
        }
        for (name, raw) in settings.stores.sorted(by: { $0.key < $1.key }) {
            guard let factory = stores[name] else { unclaimed.append("stores.\(name)"); continue }
            try factory.validate(raw.node, "stores.\(name)", name == settings.store)
        }
        if settings.stores[settings.store] == nil, let factory = stores[settings.store] {
            try factory.validate(.emptyMapping, "stores.\(settings.store)", true)
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
