import EmbedStarCore

extension ProviderFactory {
    /// `provider: mock`: deterministic vectors, no server, optional failure injection.
    public static let mock = ProviderFactory(
        name: "mock",
        summary: "deterministic vectors from the text, no server; latency and failure injection for tests",
        configuration: MockProvider.Configuration.self
    ) { configuration, _ in
        MockProvider(configuration: configuration)
    }
}
