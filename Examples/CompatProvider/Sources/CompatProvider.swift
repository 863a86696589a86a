import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import Foundation

/// The example plugin that docs/writing-a-plugin.md builds step by step: a provider for any
/// server that speaks OpenAI's `POST /embeddings` (llama.cpp's server, vLLM, LM Studio, ...).
/// The shipped `openai` provider does more (base64 vectors, token budgets); this one is as small
/// as a complete, correct provider can be. It is not built into `embed-star`: a plugin of your
/// own is registered in `Sources/Runner/Plugins.swift`.
public struct CompatProvider: EmbeddingProvider {
    // Step 1: the configuration, read from `providers.example-compat` in plugins.yaml.
    public struct Configuration: PluginConfiguration {
        public var baseURL: String
        public var model: String
        public var apiKey: String?
        public var maxBatchSize = 32
        public var timeoutSeconds = 30.0

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case baseURL = "base_url", model, apiKey = "api_key", maxBatchSize = "max_batch_size", timeoutSeconds = "timeout_seconds"
        }

        public init(baseURL: String, model: String, apiKey: String? = nil) {
            self.baseURL = baseURL
            self.model = model
            self.apiKey = apiKey
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            baseURL = try c.decode(String.self, forKey: .baseURL)
            model = try c.decode(String.self, forKey: .model)
            apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
            try c.fill(&maxBatchSize, .maxBatchSize)  // absent: the default above stays
            try c.fill(&timeoutSeconds, .timeoutSeconds)
            guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
                throw ConfigError.invalid("base_url", "must start with http:// or https://, got '\(baseURL)'", in: decoder)
            }
            guard maxBatchSize >= 1 else { throw ConfigError.invalid("max_batch_size", "must be at least 1", in: decoder) }
            guard timeoutSeconds > 0 else { throw ConfigError.invalid("timeout_seconds", "must be more than 0", in: decoder) }
        }
    }

    let configuration: Configuration
    /// The network seam: `AsyncHTTPClientTransport` in the factory, a closure in unit tests.
    /// It also sorts failures into the kinds the pipeline acts on and hands rate-limit headers on.
    let http: ProviderHTTPClient

    public init(configuration: Configuration, transport: any HTTPTransport,
                rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }) {
        self.configuration = configuration
        http = ProviderHTTPClient(provider: "example-compat", transport: transport, timeout: .seconds(configuration.timeoutSeconds),
                                  headers: HostedAPI.headers(apiKey: configuration.apiKey), rateLimitObserver: rateLimitObserver)
    }

    // Step 2: what the pipeline needs to know about the model.
    public var model: ModelInfo {
        ModelInfo(name: configuration.model, maxBatchSize: configuration.maxBatchSize)
    }

    // Step 3: one vector per text, in order; batches over the limit split by `inBatches`.
    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        try await inBatches(texts) { batch in
            // Step 4: a non-2xx answer or a transport fault is thrown by `http` as an
            // EmbeddingError of the right kind; the answer's shape is checked here.
            let response = try await http.post(ProviderHTTPClient.join(configuration.baseURL, "embeddings"),
                                               json: try Self.requestBody(model: configuration.model, texts: batch))
            return try Self.vectors(from: response.body, count: batch.count)
        }
    }

    /// `{"model": ..., "input": [...]}`.
    static func requestBody(model: String, texts: [String]) throws -> Data {
        try JSONSerialization.data(withJSONObject: ["model": model, "input": texts])
    }

    struct Answer: Decodable {
        struct Item: Decodable {
            var index: Int
            var embedding: [Float]
        }
        var data: [Item]
    }

    /// The vectors of an answer, in input order; anything but one vector per input is retryable.
    static func vectors(from body: Data, count: Int) throws -> [[Float]] {
        guard let answer = try? JSONDecoder().decode(Answer.self, from: body),
              answer.data.count == count, Set(answer.data.map(\.index)) == Set(0..<count) else {
            throw EmbeddingError(.retryable, "example-compat: the answer is not one embedding per input")
        }
        return answer.data.sorted { $0.index < $1.index }.map(\.embedding)
    }

    // Step 5: a health check that spends no embedding.
    public func health() async -> ComponentHealth {
        await http.probe(ProviderHTTPClient.join(configuration.baseURL, "models"))
    }
}

// Step 6: the factory the registry knows it by.
extension ProviderFactory {
    public static let exampleCompat = ProviderFactory(
        name: "example-compat",
        summary: "example plugin (docs/writing-a-plugin.md): any OpenAI-compatible /embeddings server, minimal",
        configuration: CompatProvider.Configuration.self
    ) { configuration, context in
        CompatProvider(configuration: configuration, transport: AsyncHTTPClientTransport(), rateLimitObserver: context.rateLimitObserver)
    }
}
