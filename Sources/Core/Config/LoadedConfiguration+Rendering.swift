import EmbedStarConfig

extension ConfigRendering {
    /// The selected plugins' sections and the core settings, as YAML (`embed-star config`).
    public static func render(_ configuration: LoadedConfiguration) -> String {
        var tree = configuration.tree
        let settings = configuration.settings
        var providers = ConfigNode.emptyMapping
        providers.set([settings.provider], to: configuration.providerSection)
        var stores = ConfigNode.emptyMapping
        stores.set([settings.store], to: configuration.storeSection)
        tree.set(["providers"], to: providers)
        tree.set(["stores"], to: stores)
        if var entries = tree.entries {
            entries.removeAll { $0.key == "environments" }
            tree = ConfigNode(.mapping(entries))
        }
        return render(tree, comment: configuration.environmentName.map { "environment: \($0)" })
    }
}
