import EmbedStarConfig
import Foundation

/// One command-line flag that sets a configuration value.
public struct ConfigOverride: Sendable {
    public enum Target: Sendable {
        /// A fixed path such as `pipeline.batch_size`.
        case path([String])
        /// The key the selected provider declares for the flag (`providers.<provider>.KEY`).
        case providerFlag(PluginFlag)
        /// The key the selected store declares for the flag (`stores.<store>.KEY`).
        case storeFlag(PluginFlag)
    }

    public var target: Target
    public var value: String
    /// The flag, for error messages (`--batch-size`).
    public var flag: String

    public init(_ target: Target, value: String, flag: String) {
        self.target = target
        self.value = value
        self.flag = flag
    }
}

/// The configuration after environments, interpolation and overrides: what the process runs with.
public struct LoadedConfiguration: Sendable {
    public var settings: EmbedStarSettings
    /// The effective tree, for `embed-star config`.
    public var tree: ConfigNode
    public var environmentName: String?
    public var source: String
    /// The folder relative paths in plugin sections are resolved against.
    public var directory: URL

    public var providerSection: ConfigNode { settings.providers[settings.provider]?.node ?? .emptyMapping }
    public var storeSection: ConfigNode { settings.stores[settings.store]?.node ?? .emptyMapping }
}

public enum ConfigLoader {
    /// Reads `path`: parses it, overlays `environments.<environment>`, replaces `${VAR}` from
    /// `environment` (with an optional `.env` beside the file, where the process environment
    /// wins), applies `overrides`, and decodes the core settings.
    /// - Parameter registry: where a flag of the selected plugin finds the key that plugin declares
    ///   for it (``PluginConfiguration/flagKeys``); without one, or for a plugin it does not know
    ///   (the unknown name is reported when the registry validates), the flag's conventional key.
    public static func load(
        path: String,
        environmentName: String? = nil,
        overrides: [ConfigOverride] = [],
        registry: PluginRegistry? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> LoadedConfiguration {
        let url = URL(fileURLWithPath: path)
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(location: ConfigLocation(source: path), path: nil, message: "cannot read the configuration file (\(Self.reason(error)))")
        }
        var variables = environment
        let dotEnv = url.deletingLastPathComponent().appendingPathComponent(".env")
        if let envText = try? String(contentsOf: dotEnv, encoding: .utf8) {
            variables = DotEnv.parse(envText).merging(environment) { _, process in process }
        }
        return try load(yaml: text, source: url.lastPathComponent, directory: url.deletingLastPathComponent(),
                        environmentName: environmentName ?? environment["EMBED_STAR_ENV"], overrides: overrides, registry: registry,
                        environment: variables)
    }

    public static func load(
        yaml: String,
        source: String,
        directory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        environmentName: String? = nil,
        overrides: [ConfigOverride] = [],
        registry: PluginRegistry? = nil,
        environment: [String: String] = [:]
    ) throws(ConfigError) -> LoadedConfiguration {
        var tree = try ConfigNode.parse(yaml: yaml, source: source)
        guard tree.entries != nil else {
            throw ConfigError(location: tree.location, path: nil, message: "the top level must be a mapping")
        }
        let name = environmentName.flatMap { $0.isEmpty ? nil : $0 }
        if let name {
            let environments = tree["environments"]?.entries ?? []
            guard let overlay = environments.first(where: { $0.key == name }) else {
                let known = environments.map(\.key)
                var message = "unknown environment '\(name)'"
                if let guess = closestMatch(to: name, in: known) { message += "; did you mean '\(guess)'?" }
                message += known.isEmpty ? " (the file defines no environments)" : " (defined: \(known.joined(separator: ", ")))"
                throw ConfigError(location: tree["environments"]?.location ?? ConfigLocation(source: source), path: "environments", message: message)
            }
            tree = tree.merged(with: overlay.value)
        }
        tree = try Interpolation.apply(tree, environment: environment)

        // Flags naming plugin keys need the selected plugin, which other flags may change.
        for override in overrides {
            if case .path(let path) = override.target { tree.set(path[...], to: node(for: override)) }
        }
        for override in overrides {
            switch override.target {
            case .path: continue
            case .providerFlag(let flag):
                let provider = tree["provider"]?.scalarText ?? ""
                let key = try pluginKey(flag, of: provider, kind: "provider", factory: registry?.providers[provider]?.flagKeys, override)
                tree.set(["providers", provider, key], to: node(for: override))
            case .storeFlag(let flag):
                let store = tree["store"]?.scalarText ?? ""
                let key = try pluginKey(flag, of: store, kind: "store", factory: registry?.stores[store]?.flagKeys, override)
                tree.set(["stores", store, key], to: node(for: override))
            }
        }

        let settings: EmbedStarSettings
        do {
            settings = try ConfigDecoder().decode(EmbedStarSettings.self, from: tree, path: "")
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(location: ConfigLocation(source: source), path: nil, message: "\(error)")
        }
        try settings.pipeline.validate { key in tree["pipeline"]?[key]?.location }
        _ = try TextBuilder(template: settings.text.template)
        return LoadedConfiguration(settings: settings, tree: tree, environmentName: name, source: source, directory: directory)
    }

    /// The key `flag` sets in the selected plugin's section; a plugin that declares none for it
    /// is an error naming the flag and the plugin.
    private static func pluginKey(_ flag: PluginFlag, of plugin: String, kind: String, factory flagKeys: [PluginFlag: String]?,
                                  _ override: ConfigOverride) throws(ConfigError) -> String {
        guard let flagKeys else { return flag.conventionalKey }
        guard let key = flagKeys[flag] else {
            throw ConfigError(location: ConfigLocation(source: "command line \(override.flag)"), path: nil,
                              message: "the \(plugin) \(kind) has no setting \(override.flag) sets; set its keys in the configuration file or with --set")
        }
        return key
    }

    private static func node(for override: ConfigOverride) -> ConfigNode {
        ConfigNode(ConfigNode.scalarValue(override.value, quoted: false), location: ConfigLocation(source: "command line \(override.flag)"))
    }

    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError || nsError.code == 260 {
            return "no such file"
        }
        return nsError.localizedDescription
    }
}
