import EmbedStarCore
import EmbedStarLocal
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarSQLiteStore
import EmbedStarSurrealStore
import EmbedStarTogether

/// Every plugin built into the executables (`embed-star`, `embed-star-bench`): the one place
/// that names the backends. A new backend is its module, its `import` and one `register` line
/// here, and its target among this module's dependencies in Package.swift.
public enum BuiltInPlugins {
    public static let registry: PluginRegistry = {
        var registry = PluginRegistry()
        do {
            try registry.register(ProviderFactory.mock)
            try registry.register(ProviderFactory.ollama)
            try registry.register(ProviderFactory.openAI)
            try registry.register(ProviderFactory.together)
            try registry.register(ProviderFactory.local)
            try registry.register(StoreFactory.mock)
            try registry.register(StoreFactory.surreal)
            try registry.register(StoreFactory.sqlite)
        } catch {
            fatalError("the built-in plugins: \(error)")  // a programming error: every run and test stops here
        }
        return registry
    }()
}
