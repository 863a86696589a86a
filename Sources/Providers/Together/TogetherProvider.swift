import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import Foundation
import NIOHTTP1

/// Embeddings from Together AI's OpenAI-shaped `POST /embeddings` (no base64, no dimensions).
public struct TogetherProvider: EmbeddingProvider {
    public struct Configuration: PluginConfiguration {
        public var apiKey: String?
        public var baseURL = "https://api.together.xyz/v1"
        public var model = "intfloat/multilingual-e5-large-instruct"
        public var maxBatchSize = 100
        /// Defaults to the model's context length from the table below, else 512.
        public var maxInputTokens: Int?
        /// `tls_ca_file`, `require_tls`.
        public var tls = ProviderTLS()
        public var timeoutSeconds = 60.0

        public init() {}

        public static var extraKeys: [String] { ProviderTLS.keys }

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case apiKey = "api_key", baseURL = "base_url", model, maxBatchSize = "max_batch_size"
            case maxInputTokens = "max_input_tokens", timeoutSeconds = "timeout_seconds"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
            try c.fill(&baseURL, .baseURL)
            try c.fill(&model, .model)
            try c.fill(&maxBatchSize, .maxBatchSize)
            maxInputTokens = try c.decodeIfPresent(Int.self, forKey: .maxInputTokens)
            try c.fill(&timeoutSeconds, .timeoutSeconds)
            tls = try ProviderTLS(from: decoder, url: baseURL, urlKey: CodingKeys.baseURL.rawValue)
            func fail(_ key: CodingKeys, _ message: String) -> ConfigError { .invalid(key.rawValue, message, in: decoder) }
            try HostedAPI.check(baseURL: baseURL, apiKey: apiKey, vendorHost: "api.together.xyz", keyVariable: "TOGETHER_API_KEY", in: decoder)
            guard maxBatchSize >= 1 else { throw fail(.maxBatchSize, "must be at least 1") }
            guard timeoutSeconds > 0 else { throw fail(.timeoutSeconds, "must be positive") }
        }
    }

    /// Dimensions and context lengths of Together's embedding models.
    public static let knownModels: [String: (dimensions: Int, contextTokens: Int)] = [
        "intfloat/multilingual-e5-large-instruct": (1024, 514),
        "BAAI/bge-base-en-v1.5": (768, 512),
        "BAAI/bge-large-en-v1.5": (1024, 512),
        "togethercomputer/m2-bert-80M-8k-retrieval": (768, 8192),
    ]

    public let configuration: Configuration
    public let model: ModelInfo
    let http: ProviderHTTPClient

    public init(configuration: Configuration, transport: any HTTPTransport, rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }) {
        self.configuration = configuration
        http = ProviderHTTPClient(provider: "together", transport: transport, timeout: .seconds(configuration.timeoutSeconds),
                                  headers: HostedAPI.headers(apiKey: configuration.apiKey), rateLimitObserver: rateLimitObserver)
        let known = Self.knownModels[configuration.model]
        model = ModelInfo(name: configuration.model, dimensions: known?.dimensions, maxBatchSize: configuration.maxBatchSize,
                          maxInputTokens: configuration.maxInputTokens ?? known?.contextTokens ?? 512,
                          prefixes: Self.prefixes(model: configuration.model))
    }

    /// The task prefixes of models Together serves without adding them: e5-instruct's
    /// instruction and bge's query prompt (both on queries only).
    static func prefixes(model: String) -> TaskPrefixes {
        let model = model.lowercased()
        if model.contains("e5-large-instruct") {
            return TaskPrefixes(query: "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ", document: "")
        }
        if model.contains("bge-") && model.contains("-en") {
            return TaskPrefixes(query: "Represent this sentence for searching relevant passages: ", document: "")
        }
        return .none
    }

    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        try await inBatches(texts) { try await http.openAIEmbeddings(baseURL: configuration.baseURL, model: configuration.model, texts: $0) }
    }

    /// `GET /models`: answers without spending an embedding.
    public func health() async -> ComponentHealth {
        await http.probe(ProviderHTTPClient.join(configuration.baseURL, "models"))
    }
}
