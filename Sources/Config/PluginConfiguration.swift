/// The configuration type of a plugin: decoded from the plugin's section, every key optional
/// with a default unless the plugin cannot work without it (``Swift/KeyedDecodingContainer/fill(_:_:)``
/// keeps the default of a key that is absent).
///
/// The keys a section may hold are declared, not inferred: its `CodingKeys` (listed with
/// `CaseIterable`), plus ``extraKeys`` read through a shared part (TLS). A key the section holds
/// that is not declared is an error with a did-you-mean, whatever the values are.
public protocol PluginConfiguration: Decodable, Sendable {
    associatedtype CodingKeys: CodingKey, CaseIterable
    /// Keys read by a part decoded from the same section (``ProviderTLS`` in the HTTP providers).
    static var extraKeys: [String] { get }
    /// The key each command-line flag sets in the section (default: the flag's conventional key
    /// when declared). A requirement, not only an extension member, so a plugin's own answer is
    /// the one the registry reads.
    static var flagKeys: [PluginFlag: String] { get }
}

extension PluginConfiguration {
    public static var extraKeys: [String] { [] }

    /// Every key the section may hold.
    public static var declaredKeys: [String] { CodingKeys.allCases.map(\.stringValue) + extraKeys }
}

/// A command-line flag that sets a key in whichever plugin's section is selected (`--db-url`,
/// `--pool-size`, `--embedding-model`). The flag names a meaning; each plugin's configuration
/// says which of its keys has that meaning (``PluginConfiguration/flagKeys``), so a flag works
/// for a third-party plugin and never writes a key the plugin does not declare.
public enum PluginFlag: String, Sendable, CaseIterable {
    /// Which model the provider embeds with.
    case model
    /// Where the store's database is: a URL or a file.
    case database
    /// How many connections the store opens.
    case poolSize

    /// The key a plugin's section uses for this flag unless it declares another: `model`, `url`,
    /// `pool_size`.
    public var conventionalKey: String {
        switch self {
        case .model: "model"
        case .database: "url"
        case .poolSize: "pool_size"
        }
    }
}

extension PluginConfiguration {
    /// The key each flag sets in this plugin's section: by default the flag's conventional key
    /// when the section declares it. A plugin whose key has another name declares it here (the
    /// SQLite store: `database` is its `path`); a flag with no key here is an error that names the
    /// plugin, not a key the section then refuses.
    public static var flagKeys: [PluginFlag: String] {
        var keys: [PluginFlag: String] = [:]
        for flag in PluginFlag.allCases where declaredKeys.contains(flag.conventionalKey) {
            keys[flag] = flag.conventionalKey
        }
        return keys
    }
}
