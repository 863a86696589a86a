import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import Foundation
import Logging
import Synchronization

/// Embeddings from an Ollama server: `POST /api/embed` with whole batches, falling back once to
/// the legacy one-text `POST /api/embeddings` on servers that predate it.
public final class OllamaProvider: EmbeddingProvider {
    public struct Configuration: PluginConfiguration {
        /// The server, with its port (`OLLAMA_URL`).
        public var url = "http://localhost:11434"
        public var model = "nomic-embed-text"
        /// Let the server cut inputs longer than the model's context (else they are rejected).
        public var truncate = true
        /// How long the server keeps the model loaded after a call (`5m`, `1h`, `-1`).
        public var keepAlive: String?
        public var dimensions: Int?
        public var maxBatchSize = 64
        /// Defaults to the model's context length as `/api/show` reports it.
        public var maxInputTokens: Int?
        /// `tls_ca_file`, `require_tls`.
        public var tls = ProviderTLS()
        public var timeoutSeconds = 120.0

        public init() {}

        public static var extraKeys: [String] { ProviderTLS.keys }

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case url, model, truncate, keepAlive = "keep_alive", dimensions, maxBatchSize = "max_batch_size"
            case maxInputTokens = "max_input_tokens", timeoutSeconds = "timeout_seconds"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&url, .url)
            try c.fill(&model, .model)
            try c.fill(&truncate, .truncate)
            keepAlive = try c.decodeIfPresent(String.self, forKey: .keepAlive)
            dimensions = try c.decodeIfPresent(Int.self, forKey: .dimensions)
            try c.fill(&maxBatchSize, .maxBatchSize)
            maxInputTokens = try c.decodeIfPresent(Int.self, forKey: .maxInputTokens)
            try c.fill(&timeoutSeconds, .timeoutSeconds)
            tls = try ProviderTLS(from: decoder, url: url, urlKey: CodingKeys.url.rawValue)
            func fail(_ key: CodingKeys, _ message: String) -> ConfigError { .invalid(key.rawValue, message, in: decoder) }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw fail(.url, "must be an http or https URL with a host, like http://localhost:11434, got '\(url)'")
            }
            guard !model.isEmpty else { throw fail(.model, "must not be empty") }
            guard maxBatchSize >= 1 else { throw fail(.maxBatchSize, "must be at least 1") }
            guard timeoutSeconds > 0 else { throw fail(.timeoutSeconds, "must be positive") }
        }
    }

    private enum Endpoint { case batch, legacy }

    public let configuration: Configuration
    public let model: ModelInfo
    let http: ProviderHTTPClient
    private let logger: Logger
    /// `/api/embed` until a server shows it lacks it; then `/api/embeddings` for good.
    private let endpoint = Mutex(Endpoint.batch)

    public init(configuration: Configuration, transport: any HTTPTransport, logger: Logger = Logger(label: "embed-star.ollama"),
                rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }) {
        self.configuration = configuration
        self.logger = logger
        http = ProviderHTTPClient(provider: "ollama", transport: transport, timeout: .seconds(configuration.timeoutSeconds),
                                  rateLimitObserver: rateLimitObserver)
        model = ModelInfo(name: configuration.model, dimensions: configuration.dimensions, maxBatchSize: configuration.maxBatchSize,
                          maxInputTokens: configuration.maxInputTokens ?? 2048, prefixes: Self.prefixes(model: configuration.model))
    }

    /// The task prefixes of models Ollama serves without adding them: nomic-embed-text's.
    static func prefixes(model: String) -> TaskPrefixes {
        model.lowercased().hasPrefix("nomic-embed-text") ? TaskPrefixes(query: "search_query: ", document: "search_document: ") : .none
    }

    private func url(_ path: String) -> String { ProviderHTTPClient.join(configuration.url, path) }

    private var pullHint: String {
        "model '\(configuration.model)' is not on the Ollama server at \(ProviderErrors.redact(configuration.url)); run `ollama pull \(configuration.model)`"
    }

    /// Asks `/api/show` for the model's vector length and context length (no embedding spent).
    ///
    /// The vector length is part of the model identity stored with every vector, so it is never
    /// guessed: when `/api/show` cannot tell it (and `dimensions` is not configured), this throws
    /// a retryable error instead of returning an identity without it, which would make every
    /// stored vector look like another model's.
    public func prepare() async throws -> ModelInfo {
        let body = try JSONSerialization.data(withJSONObject: ["model": configuration.model])
        let response: HTTPExchange.Response
        do {
            var headers = http.baseHeaders
            headers.replaceOrAdd(name: "content-type", value: "application/json")
            response = try await http.exchange(HTTPExchange.Request(method: .POST, url: url("api/show"), headers: headers, body: body, timeout: http.timeout))
        } catch {
            return try unprobed(because: "\(error)")
        }
        if response.status == 404 { throw EmbeddingError(.fatal, pullHint) }
        guard response.status == 200, let show = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            return try unprobed(because: "/api/show answered HTTP \(response.status)")
        }
        if let capabilities = show["capabilities"] as? [String], !capabilities.contains("embedding") {
            throw EmbeddingError(.fatal, "model '\(configuration.model)' cannot make embeddings (its capabilities: \(capabilities.joined(separator: ", ")))")
        }
        var info = model
        if let modelInfo = show["model_info"] as? [String: Any] {
            for (key, value) in modelInfo {
                guard let number = (value as? NSNumber)?.intValue else { continue }
                if key.hasSuffix(".embedding_length"), configuration.dimensions == nil { info.dimensions = number }
                if key.hasSuffix(".context_length"), configuration.maxInputTokens == nil { info.maxInputTokens = number }
            }
        }
        guard info.dimensions != nil else { return try unprobed(because: "/api/show did not name the model's embedding length") }
        return info
    }

    /// The model as configured when its vector length is configured; otherwise a retryable error.
    private func unprobed(because reason: String) throws -> ModelInfo {
        if configuration.dimensions != nil {
            logger.warning("could not ask Ollama about the model; using the configured dimensions", metadata: ["reason": "\(reason)"])
            return model
        }
        throw EmbeddingError(.retryable, """
            cannot learn the vector length of model '\(configuration.model)' from Ollama at \(ProviderErrors.redact(configuration.url)) \
            (\(reason)); it is part of the model identity stored with every vector. Set providers.ollama.dimensions to start without asking
            """)
    }

    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        try await inBatches(texts) { try await embedBatch($0) }
    }

    private func embedBatch(_ texts: [String]) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        if let empty = texts.firstIndex(where: \.isEmpty) {
            throw EmbeddingError(.invalidInput(indices: [empty]), "empty input")
        }
        if endpoint.withLock({ $0 }) == .legacy { return try await embedLegacy(texts) }
        var request: [String: Any] = ["model": configuration.model, "input": texts, "truncate": configuration.truncate]
        if let keepAlive = configuration.keepAlive { request["keep_alive"] = keepAlive }
        if let dimensions = configuration.dimensions { request["dimensions"] = dimensions }
        var headers = http.baseHeaders
        headers.replaceOrAdd(name: "content-type", value: "application/json")
        let response = try await http.exchange(HTTPExchange.Request(
            method: .POST, url: url("api/embed"), headers: headers, body: try JSONSerialization.data(withJSONObject: request), timeout: http.timeout))
        if response.status == 404 {
            let (message, _) = ProviderErrors.message(from: response.body)
            if message.lowercased().contains("model") { throw EmbeddingError(.fatal, pullHint + " (\(message))") }
            logger.notice("this Ollama server has no /api/embed; using /api/embeddings, one text per call")
            endpoint.withLock { $0 = .legacy }
            return try await embedLegacy(texts)
        }
        guard response.status == 200 else {
            throw ProviderErrors.classify(status: response.status, headers: response.headers, body: response.body, provider: "ollama")
        }
        struct Answer: Decodable { var embeddings: [[Float]] }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: response.body) else {
            throw EmbeddingError(.retryable, "ollama sent an answer without 'embeddings' (\(response.body.count) bytes)")
        }
        guard answer.embeddings.count == texts.count else {
            throw EmbeddingError(.retryable, "ollama returned \(answer.embeddings.count) vectors for \(texts.count) inputs")
        }
        return answer.embeddings
    }

    private func embedLegacy(_ texts: [String]) async throws -> [[Float]] {
        struct Answer: Decodable { var embedding: [Float] }
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() {
            var request: [String: Any] = ["model": configuration.model, "prompt": text]
            if let keepAlive = configuration.keepAlive { request["keep_alive"] = keepAlive }
            let response: HTTPExchange.Response
            do {
                response = try await http.post(url("api/embeddings"), json: try JSONSerialization.data(withJSONObject: request))
            } catch let error as EmbeddingError {
                if case .invalidInput = error.kind { throw EmbeddingError(.invalidInput(indices: [index]), error.message) }
                if error.message.contains("HTTP 404") { throw EmbeddingError(.fatal, pullHint) }
                throw error
            }
            guard let answer = try? JSONDecoder().decode(Answer.self, from: response.body) else {
                throw EmbeddingError(.retryable, "ollama sent an answer without 'embedding' (\(response.body.count) bytes)")
            }
            vectors.append(answer.embedding)
        }
        return vectors
    }

    /// `GET /api/tags`: the server answers and has the model (no embedding spent).
    public func health() async -> ComponentHealth {
        let started = ContinuousClock.now
        do {
            let response = try await http.get(url("api/tags"))
            let latency = ContinuousClock.now - started
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            let names = ((object?["models"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String ?? $0["model"] as? String }
            let wanted = configuration.model
            let present = names.contains { $0 == wanted || $0 == wanted + ":latest" || $0.hasPrefix(wanted + ":") && !wanted.contains(":") }
            return present ? ComponentHealth(status: .up, latency: latency) : ComponentHealth(status: .degraded, detail: pullHint, latency: latency)
        } catch {
            return ComponentHealth(status: .down, detail: "\(error)", latency: ContinuousClock.now - started)
        }
    }
}
