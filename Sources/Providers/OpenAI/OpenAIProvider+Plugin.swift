import EmbedStarCore
import EmbedStarHTTPProvider

extension ProviderFactory {
    /// `provider: openai`: OpenAI's embeddings API, or any compatible server by `base_url`.
    public static let openAI = ProviderFactory(
        name: "openai",
        summary: "OpenAI /v1/embeddings (or any compatible server via base_url); base64 vectors, batches up to 2048",
        configuration: OpenAIProvider.Configuration.self
    ) { configuration, context in
        OpenAIProvider(configuration: configuration, transport: AsyncHTTPClientTransport(tls: try configuration.tls.configuration()),
                       rateLimitObserver: context.rateLimitObserver)
    }
}
