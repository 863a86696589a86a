import EmbedStarCore
import EmbedStarHTTPProvider

extension ProviderFactory {
    /// `provider: ollama`: a local or remote Ollama server.
    public static let ollama = ProviderFactory(
        name: "ollama",
        summary: "Ollama /api/embed (batched; falls back to /api/embeddings); model facts from /api/show",
        configuration: OllamaProvider.Configuration.self
    ) { configuration, context in
        OllamaProvider(configuration: configuration, transport: AsyncHTTPClientTransport(tls: try configuration.tls.configuration()),
                       logger: context.logger, rateLimitObserver: context.rateLimitObserver)
    }
}
