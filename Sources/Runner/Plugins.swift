import EmbedStarCore
import EmbedStarLocal
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarSQLiteStore
import EmbedStarSurrealStore
import EmbedStarTogether

/// Every plugin built into the executable. A new backend is its module, its `import` and one
/// `register` line here, and its target among the Runner's dependencies in Package.swift.
enum BuiltInPlugins {
    static let registry: PluginRegistry = {
        var registry = PluginRegistry()
        registry.register(ProviderFactory.mock)
        registry.register(ProviderFactory.ollama)
        registry.register(ProviderFactory.openAI)
        registry.register(ProviderFactory.together)
        registry.register(ProviderFactory.local)
        registry.register(StoreFactory.mock)
        registry.register(StoreFactory.surreal)
        registry.register(StoreFactory.sqlite)
        return registry
    }()
}
