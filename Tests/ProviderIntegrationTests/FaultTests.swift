import EmbedStarApp
import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import EmbedStarOllama
import EmbedStarMockStore
import Foundation
import Logging
import Testing

/// Each fault category against the real model, through the fault-injecting proxy.
@Suite(.enabled(if: ModelServer.available, "needs EMBED_STAR_MODEL_URL (scripts/test starts the model)"))
struct FaultTests {
    static let providers = ["openai", "together", "ollama"]

    @Test(arguments: providers)
    func rateLimitCarriesRetryAfter(_ name: String) async throws {
        let server = try ModelServer()
        try await server.inject([["status": 429, "headers": ["retry-after": "2"], "body": ["error": ["message": "Rate limit reached", "code": "rate_limit_exceeded"]]]])
        let error = await embeddingError { _ = try await server.provider(name).embed(["x"], mode: .document) }
        #expect(error?.kind == .rateLimited(retryAfter: .seconds(2)))
    }

    @Test func togetherLegacyRateLimitIsARateLimit() async throws {
        let server = try ModelServer()
        try await server.inject([["status": 400, "body": ["error": ["message": "rate limited", "code": "rate_limit"]]]])
        let error = await embeddingError { _ = try await server.provider("together").embed(["x"], mode: .document) }
        #expect(error?.kind == .rateLimited(retryAfter: nil))
    }

    @Test func quotaExhaustedIsFatal() async throws {
        let server = try ModelServer()
        try await server.inject([["status": 429, "body": ["error": ["message": "You exceeded your current quota", "code": "insufficient_quota"]]]])
        let error = await embeddingError { _ = try await server.provider("openai").embed(["x"], mode: .document) }
        #expect(error?.kind == .fatal)
    }

    @Test(arguments: [500, 503, 502])
    func serverErrorsAreRetryable(_ status: Int) async throws {
        let server = try ModelServer()
        try await server.inject([["status": status, "body": ["error": ["message": "overloaded"]]]])
        let error = await embeddingError { _ = try await server.provider("openai").embed(["x"], mode: .document) }
        #expect(error?.kind == .retryable)
        #expect(error?.message.contains("HTTP \(status)") == true)
    }

    @Test(arguments: providers)
    func slowAnswerPastTheTimeoutIsRetryable(_ name: String) async throws {
        let server = try ModelServer()
        try await server.inject([["slow": 5.0]])
        let started = ContinuousClock.now
        let error = await embeddingError { _ = try await server.provider(name, "timeout_seconds: 0.5\n").embed(["x"], mode: .document) }
        #expect(error?.kind == .retryable)
        #expect(ContinuousClock.now - started < .seconds(4))  // gave up well before the answer
    }

    @Test(arguments: providers)
    func connectionResetIsRetryable(_ name: String) async throws {
        let server = try ModelServer()
        try await server.inject([["reset": true]])
        let error = await embeddingError { _ = try await server.provider(name).embed(["x"], mode: .document) }
        #expect(error?.kind == .retryable)
    }

    @Test(arguments: providers)
    func truncatedBodyIsRetryable(_ name: String) async throws {
        let server = try ModelServer()
        try await server.inject([["truncate": true]])
        let error = await embeddingError { _ = try await server.provider(name).embed(["a", "b"], mode: .document) }
        #expect(error?.kind == .retryable)
    }

    @Test(arguments: providers)
    func wrongVectorCountIsRetryable(_ name: String) async throws {
        let server = try ModelServer()
        try await server.inject([["drop_vector": true]])
        let error = await embeddingError { _ = try await server.provider(name).embed(["a", "b", "c"], mode: .document) }
        #expect(error?.kind == .retryable)
        #expect(error?.message.contains("2 vectors for 3 inputs") == true)
    }

    @Test func unreachableServerIsRetryable() async throws {
        let node = try ConfigNode.parse(yaml: "url: http://127.0.0.1:1\nmodel: e5-small\ntimeout_seconds: 2", source: "t")
        let provider = EmbedStarOllamaProvider(node)
        let error = await embeddingError { _ = try await provider.embed(["x"], mode: .document) }
        #expect(error?.kind == .retryable)
        #expect(error?.message.contains("could not be reached") == true)
    }

    /// Item 3 of issue 14: a failed `/api/show` at start must not change the model identity.
    @Test func ollamaIdentityNeverComesFromAFailedProbe() async throws {
        let server = try ModelServer()
        let healthy = try await server.provider("ollama").prepare()
        #expect(healthy.dimensions == 384)
        let identity = ModelIdentity.make(provider: "ollama", model: healthy)
        for status in [500, 503] {
            try await server.mode(["show_status": status])
            let error = await embeddingError { _ = try await server.provider("ollama").prepare() }
            #expect(error?.kind == .retryable, "a probe that failed with HTTP \(status) must be retried, not guessed around")
            #expect(error?.message.contains("providers.ollama.dimensions") == true)
            // With the length configured, the identity is the same as when the probe answers.
            let configured = try await server.provider("ollama", "dimensions: 384").prepare()
            #expect(ModelIdentity.make(provider: "ollama", model: configured) == identity)
        }
        // The pipeline waits for the probe instead of starting with another identity.
        try await server.mode(["show_status": 503])
        let provider = try server.provider("ollama")
        let started = Task {
            try await Pipeline.start(provider: provider, providerName: "ollama", store: MockStore(repos: []),
                                     configuration: PipelineConfiguration(), instanceID: "t", logger: Logger(label: "test"))
        }
        try await Task.sleep(for: .milliseconds(1200))
        try await server.mode([:])
        let pipeline = try await started.value
        #expect(pipeline.modelIdentity == identity)
    }

    @Test func pipelineRidesOutFaultsAndEmbedsEverything() async throws {
        let server = try ModelServer()
        try await server.inject([
            ["status": 429, "headers": ["retry-after-ms": "200"], "body": ["error": ["message": "slow down"]]],
            ["status": 503, "body": ["error": ["message": "overloaded"]]],
            ["drop_vector": true],
        ])
        let repos = SyntheticRepos.generate(count: 60, seed: 5)
        let store = MockStore(repos: repos)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 20
        configuration.parallelWorkers = 1
        configuration.retryDelayMs = 0
        let pipeline = try await Pipeline.start(provider: try server.provider("openai"), providerName: "openai", store: store,
                                                configuration: configuration, instanceID: "t", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 60)
        #expect(summary.failed == 0)
    }
}
