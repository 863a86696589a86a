import AsyncHTTPClient
import EmbedStarCore
import EmbedStarHTTPProvider
import Foundation
import NIOCore
import NIOHTTP1

/// The example plugin that docs/writing-a-plugin.md builds step by step: a provider for any
/// server that speaks OpenAI's `POST /embeddings` (llama.cpp's server, vLLM, LM Studio, ...).
/// The shipped `openai` provider does more (base64 vectors, token budgets, rate-limit headers);
/// this one is as small as a complete, correct provider can be.
public struct CompatProvider: EmbeddingProvider {
    // Step 1: the configuration, read from `providers.example-compat` in plugins.yaml.
    public struct Configuration: PluginConfiguration {
        public var baseURL: String
        public var model: String
        public var apiKey: String?
        public var maxBatchSize = 32
        public var timeoutSeconds = 30.0

        enum CodingKeys: String, CodingKey {
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
            maxBatchSize = try c.decodeIfPresent(Int.self, forKey: .maxBatchSize) ?? maxBatchSize
            timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? timeoutSeconds
            guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
                throw ConfigError.invalid("base_url", "must start with http:// or https://, got '\(baseURL)'", in: decoder)
            }
            guard maxBatchSize >= 1 else { throw ConfigError.invalid("max_batch_size", "must be at least 1", in: decoder) }
            guard timeoutSeconds > 0 else { throw ConfigError.invalid("timeout_seconds", "must be more than 0", in: decoder) }
        }
    }

    let configuration: Configuration
    let client: HTTPClient

    public init(configuration: Configuration, client: HTTPClient = .shared) {
        self.configuration = configuration
        self.client = client
    }

    // Step 2: what the pipeline needs to know about the model.
    public var model: ModelInfo {
        ModelInfo(name: configuration.model, maxBatchSize: configuration.maxBatchSize)
    }

    // Step 3: one vector per text, in order; batches over the limit split by `inBatches`.
    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        try await inBatches(texts) { batch in try await send(batch) }
    }

    struct Answer: Decodable {
        struct Item: Decodable {
            var index: Int
            var embedding: [Float]
        }
        var data: [Item]
    }

    private func send(_ batch: [String]) async throws -> [[Float]] {
        let url = configuration.baseURL.trimmingSuffix("/") + "/embeddings"
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let key = configuration.apiKey { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        let body = try JSONSerialization.data(withJSONObject: ["model": configuration.model, "input": batch])
        request.body = .bytes(ByteBuffer(bytes: body))
        // Step 4: every failure becomes an EmbeddingError of the right kind.
        let status: Int, headers: HTTPHeaders, data: Data
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(configuration.timeoutSeconds * 1000)))
            var buffer = try await response.body.collect(upTo: 256 << 20)
            (status, headers, data) = (Int(response.status.code), response.headers, Data(buffer.readBytes(length: buffer.readableBytes) ?? []))
        } catch {
            try Task.checkCancellation()
            throw EmbeddingError(.retryable, "example-compat: \(ProviderErrors.redact(url)) could not be reached: \(error)")
        }
        guard status == 200 else {
            throw ProviderErrors.classify(status: status, headers: headers, body: data, provider: "example-compat")
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: data), answer.data.count == batch.count else {
            throw EmbeddingError(.retryable, "example-compat: the answer is not one embedding per input")
        }
        return answer.data.sorted { $0.index < $1.index }.map(\.embedding)
    }

    // Step 5: a health check that spends no embedding.
    public func health() async -> ComponentHealth {
        var request = HTTPClientRequest(url: configuration.baseURL.trimmingSuffix("/") + "/models")
        if let key = configuration.apiKey { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        let started = ContinuousClock.now
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            let latency = ContinuousClock.now - started
            return response.status == .ok ? ComponentHealth(status: .up, latency: latency)
                : ComponentHealth(status: .down, detail: "GET /models answered \(response.status.code)", latency: latency)
        } catch {
            return ComponentHealth(status: .down, detail: "\(error)")
        }
    }
}

// Step 6: the factory the registry knows it by.
extension ProviderFactory {
    public static let exampleCompat = ProviderFactory(
        name: "example-compat",
        summary: "example plugin (docs/writing-a-plugin.md): any OpenAI-compatible /embeddings server, minimal",
        configuration: CompatProvider.Configuration.self
    ) { configuration, context in
        CompatProvider(configuration: configuration, client: context.httpClient)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
