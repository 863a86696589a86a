import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import Foundation
import NIOHTTP1

/// Embeddings from OpenAI's `POST /embeddings`, or from any server that speaks it (Azure-style
/// gateways, local servers) through `base_url`.
public struct OpenAIProvider: EmbeddingProvider {
    public struct Configuration: PluginConfiguration {
        /// Sent as `Authorization: Bearer`; may be empty for local compatible servers.
        public var apiKey: String?
        public var baseURL = "https://api.openai.com/v1"
        public var model = "text-embedding-3-small"
        /// Shorter vectors from models that support it (text-embedding-3 and later).
        public var dimensions: Int?
        public var encodingFormat = OpenAIWire.EncodingFormat.base64
        public var organization: String?
        public var project: String?
        public var user: String?
        public var maxBatchSize = 2048
        public var maxBatchTokens = 300_000
        public var maxInputTokens = 8_192
        /// `tls_ca_file`, `require_tls`.
        public var tls = ProviderTLS()
        public var timeoutSeconds = 60.0

        public init() {}

        public static var extraKeys: [String] { ProviderTLS.keys }

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case apiKey = "api_key", baseURL = "base_url", model, dimensions, encodingFormat = "encoding_format"
            case organization, project, user, maxBatchSize = "max_batch_size", maxBatchTokens = "max_batch_tokens"
            case maxInputTokens = "max_input_tokens", timeoutSeconds = "timeout_seconds"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
            try c.fill(&baseURL, .baseURL)
            try c.fill(&model, .model)
            dimensions = try c.decodeIfPresent(Int.self, forKey: .dimensions)
            try c.fill(&encodingFormat, .encodingFormat)
            organization = try c.decodeIfPresent(String.self, forKey: .organization)
            project = try c.decodeIfPresent(String.self, forKey: .project)
            user = try c.decodeIfPresent(String.self, forKey: .user)
            try c.fill(&maxBatchSize, .maxBatchSize)
            try c.fill(&maxBatchTokens, .maxBatchTokens)
            try c.fill(&maxInputTokens, .maxInputTokens)
            try c.fill(&timeoutSeconds, .timeoutSeconds)
            tls = try ProviderTLS(from: decoder, url: baseURL, urlKey: CodingKeys.baseURL.rawValue)
            func fail(_ key: CodingKeys, _ message: String) -> ConfigError { .invalid(key.rawValue, message, in: decoder) }
            try HostedAPI.check(baseURL: baseURL, apiKey: apiKey, vendorHost: "api.openai.com", keyVariable: "OPENAI_API_KEY", in: decoder)
            guard (1...2048).contains(maxBatchSize) else { throw fail(.maxBatchSize, "must be between 1 and 2048 (the API's limit)") }
            guard maxBatchTokens >= 1, maxInputTokens >= 1 else { throw fail(.maxBatchTokens, "token limits must be positive") }
            guard timeoutSeconds > 0 else { throw fail(.timeoutSeconds, "must be positive") }
            if let dimensions {
                guard dimensions >= 1 else { throw fail(.dimensions, "must be positive") }
                if Self.fixedDimensionModels.contains(model) {
                    throw fail(.dimensions, "model \(model) does not accept 'dimensions'; remove the key")
                }
            }
        }

        /// Vector lengths of OpenAI's models; others are learned from the first answer.
        static let knownDimensions = ["text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536]
        static let fixedDimensionModels: Set = ["text-embedding-ada-002"]
    }

    public let configuration: Configuration
    public let model: ModelInfo
    let http: ProviderHTTPClient

    public init(configuration: Configuration, transport: any HTTPTransport, rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }) {
        self.configuration = configuration
        var headers = HostedAPI.headers(apiKey: configuration.apiKey)
        if let organization = configuration.organization { headers.add(name: "openai-organization", value: organization) }
        if let project = configuration.project { headers.add(name: "openai-project", value: project) }
        http = ProviderHTTPClient(provider: "openai", transport: transport, timeout: .seconds(configuration.timeoutSeconds),
                                  headers: headers, rateLimitObserver: rateLimitObserver)
        model = ModelInfo(
            name: configuration.model,
            dimensions: configuration.dimensions ?? Configuration.knownDimensions[configuration.model],
            maxBatchSize: configuration.maxBatchSize,
            maxInputTokens: configuration.maxInputTokens,
            maxBatchTokens: configuration.maxBatchTokens)
    }

    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        try await inBatches(texts) { batch in
            try await http.openAIEmbeddings(baseURL: configuration.baseURL, model: configuration.model, texts: batch, encoding: configuration.encodingFormat,
                                        dimensions: configuration.dimensions, user: configuration.user)
        }
    }

    /// `GET /models`: answers without spending an embedding.
    public func health() async -> ComponentHealth {
        await http.probe(ProviderHTTPClient.join(configuration.baseURL, "models"))
    }
}
