import EmbedStarCore
import EmbedStarHTTPProvider

extension ProviderFactory {
    /// `provider: together`: Together AI's embeddings API.
    public static let together = ProviderFactory(
        name: "together",
        summary: "Together AI /v1/embeddings; batches of 100, model table with dimensions and context lengths",
        configuration: TogetherProvider.Configuration.self
    ) { configuration, context in
        TogetherProvider(configuration: configuration, transport: AsyncHTTPClientTransport(tls: try configuration.tls.configuration()),
                         rateLimitObserver: context.rateLimitObserver)
    }
}
