import EmbedStarCore
import EmbedStarLocal
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarSQLiteStore
import EmbedStarSurrealStore
import EmbedStarTogether

/// Every plugin built into the executable. A new backend is its module plus one line here.
enum BuiltInPlugins {
    static var registry: PluginRegistry {
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
    }
}
