import EmbedStarConfig
import EmbedStarCore
import Synchronization

/// An embedding provider that needs nothing: deterministic vectors computed from the text, with
/// configurable latency and injected failures, for plugin authors, store authors and tests.
///
/// Vectors are feature-hashed words plus a text-seeded component, L2-normalized: the same text
/// always gives the same vector, different texts give different vectors, and texts sharing
/// words are closer than texts that share none, so search over mock vectors is meaningful.
public final class MockProvider: EmbeddingProvider {
    public struct Configuration: PluginConfiguration {
        public var model = "mock-embed"
        public var dimensions = 384
        public var maxBatchSize = 256
        public var maxInputTokens = 8_192
        /// Added to every call, to imitate a remote model.
        public var latencyMs = 0
        /// Share of calls that fail with a retryable error.
        public var errorRate = 0.0
        /// Share of calls answered with a rate limit.
        public var rateLimitRate = 0.0
        public var retryAfterMs = 1_000
        /// Share of vectors returned with a NaN in them.
        public var nanRate = 0.0
        /// Share of vectors returned one value short.
        public var wrongDimensionRate = 0.0
        /// Inputs containing any of these strings are rejected as invalid (item-fatal).
        public var rejectTextsContaining: [String] = []
        /// Every call fails with a run-fatal error (imitates a bad API key).
        public var failAll = false
        /// Seeds the failure injection, so a test run is repeatable.
        public var seed: UInt64 = 42

        public init() {}

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case model, dimensions, maxBatchSize = "max_batch_size", maxInputTokens = "max_input_tokens"
            case latencyMs = "latency_ms", errorRate = "error_rate", rateLimitRate = "rate_limit_rate"
            case retryAfterMs = "retry_after_ms", nanRate = "nan_rate", wrongDimensionRate = "wrong_dimension_rate"
            case rejectTextsContaining = "reject_texts_containing", failAll = "fail_all", seed
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&model, .model)
            try c.fill(&dimensions, .dimensions)
            try c.fill(&maxBatchSize, .maxBatchSize)
            try c.fill(&maxInputTokens, .maxInputTokens)
            try c.fill(&latencyMs, .latencyMs)
            try c.fill(&errorRate, .errorRate)
            try c.fill(&rateLimitRate, .rateLimitRate)
            try c.fill(&retryAfterMs, .retryAfterMs)
            try c.fill(&nanRate, .nanRate)
            try c.fill(&wrongDimensionRate, .wrongDimensionRate)
            try c.fill(&rejectTextsContaining, .rejectTextsContaining)
            try c.fill(&failAll, .failAll)
            try c.fill(&seed, .seed)
            func fail(_ key: CodingKeys, _ message: String) -> ConfigError {
                ConfigError.invalid(key.rawValue, message, in: decoder)
            }
            guard (1...65_536).contains(dimensions) else { throw fail(.dimensions, "must be between 1 and 65536, got \(dimensions)") }
            guard maxBatchSize >= 1 else { throw fail(.maxBatchSize, "must be at least 1") }
            for (key, rate) in [(CodingKeys.errorRate, errorRate), (.rateLimitRate, rateLimitRate), (.nanRate, nanRate), (.wrongDimensionRate, wrongDimensionRate)] {
                guard (0...1).contains(rate) else { throw fail(key, "must be between 0 and 1, got \(rate)") }
            }
        }
    }

    /// Counts of what was asked, for tests.
    public struct Statistics: Sendable, Hashable {
        public var calls = 0
        public var texts = 0
        public var healthChecks = 0
    }

    public let configuration: Configuration
    public let model: ModelInfo
    private let state: Mutex<(statistics: Statistics, random: SeededRandom)>

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        model = ModelInfo(name: configuration.model, dimensions: configuration.dimensions,
                          maxBatchSize: configuration.maxBatchSize, maxInputTokens: configuration.maxInputTokens)
        state = Mutex((Statistics(), SeededRandom(seed: configuration.seed)))
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        try await inBatches(texts) { try await embedBatch($0) }
    }

    /// One call to the (pretend) backend.
    private func embedBatch(_ texts: [String]) async throws -> [[Float]] {
        let (errorRoll, limitRoll) = state.withLock { state in
            state.statistics.calls += 1
            state.statistics.texts += texts.count
            return (state.random.nextUnit(), state.random.nextUnit())
        }
        if configuration.latencyMs > 0 { try await Task.sleep(for: .milliseconds(configuration.latencyMs)) }
        if configuration.failAll { throw EmbeddingError(.fatal, "mock provider configured with fail_all") }
        if texts.count > configuration.maxBatchSize {
            throw EmbeddingError(.invalidInput(indices: nil), "batch of \(texts.count) exceeds max_batch_size \(configuration.maxBatchSize)")
        }
        if limitRoll < configuration.rateLimitRate {
            throw EmbeddingError(.rateLimited(retryAfter: .milliseconds(configuration.retryAfterMs)), "mock rate limit")
        }
        if errorRoll < configuration.errorRate { throw EmbeddingError(.retryable, "mock transient failure") }
        let rejected = texts.indices.filter { index in
            texts[index].isEmpty || configuration.rejectTextsContaining.contains { texts[index].contains($0) }
        }
        if !rejected.isEmpty { throw EmbeddingError(.invalidInput(indices: rejected), "mock provider rejects \(rejected.count) input(s)") }
        return texts.map { text in
            var vector = Self.vector(for: text, dimensions: configuration.dimensions)
            let (nanRoll, dimensionRoll) = state.withLock { ($0.random.nextUnit(), $0.random.nextUnit()) }
            if nanRoll < configuration.nanRate { vector[0] = .nan }
            if dimensionRoll < configuration.wrongDimensionRate { vector.removeLast() }
            return vector
        }
    }

    public func health() async -> ComponentHealth {
        state.withLock { $0.statistics.healthChecks += 1 }
        return configuration.failAll ? ComponentHealth(status: .down, detail: "fail_all is set") : .up
    }

    /// The vector this provider returns for `text`: tests use it to check that each repo got the
    /// vector of its own text.
    public static func vector(for text: String, dimensions: Int) -> [Float] {
        var vector = [Float](repeating: 0, count: dimensions)
        var random = SeededRandom(seed: fnv1a(text.utf8))
        for index in 0..<dimensions { vector[index] = Float(random.nextUnit() - 0.5) * 0.2 }
        var word: [UInt8] = []
        func addWord() {
            guard !word.isEmpty else { return }
            let hash = fnv1a(word)
            let sign: Float = hash & 1 == 0 ? 1 : -1
            vector[Int((hash >> 1) % UInt64(dimensions))] += sign
            word.removeAll(keepingCapacity: true)
        }
        for byte in text.lowercased().utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7a) || byte >= 0x80 { word.append(byte) } else { addWord() }
        }
        addWord()
        var norm: Float = 0
        for value in vector { norm += value * value }
        norm = norm.squareRoot()
        return vector.map { $0 / norm }
    }

    private static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
