import EmbedStarApp
import EmbedStarCore
import EmbedStarMockStore
import Foundation
import Logging
import Synchronization
import Testing

/// The resilience promises against the real model behind the test front, in real time.
@Suite(.enabled(if: ModelServer.available, "needs the model server (scripts/test)"))
struct ResilienceScenarioTests {
    @Test func aProviderDownFor30SecondsOpensTheCircuitFailsNothingAndTheBackfillCompletes() async throws {
        let server = try ModelServer()
        let repos = SyntheticRepos.generate(count: 300, seed: 21)
        let store = MockStore(repos: repos)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 25
        configuration.parallelWorkers = 2
        configuration.retryDelayMs = 100
        configuration.pollIntervalMs = 100
        var resilience = ResilienceConfiguration()
        resilience.circuitBreaker.failureThreshold = 3
        resilience.circuitBreaker.openSeconds = 5
        resilience.retry.maxAttempts = 2
        resilience.retry.baseDelayMs = 100
        try await server.mode(["down_for": 30])
        let started = Date().timeIntervalSince1970
        let provider = ProtectedProvider(try server.provider("openai", "timeout_seconds: 300\n"), name: "openai", resilience: resilience)
        let pipeline = try await Pipeline.start(provider: provider, providerName: "openai", store: store,
                                                configuration: configuration, instanceID: "down", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats == StoreStats(total: 300, embedded: 300, pending: 0, failed: 0, leased: 0), "\(stats)")
        #expect(summary.failed == 0)
        let log = try await server.callLog()
        let down = log.filter { $0.status == 503 }
        let lastCall: Double = log.last?.at ?? started
        #expect(lastCall - started >= 30, "the backfill finished only after the provider came back")
        // Open for 5 s at a time over 30 s: a handful of failed calls and probes, not a retry storm.
        let bound = 3 + 2 + 30 / 5 * 2
        #expect(down.count <= bound, "\(down.count) calls reached the provider while it was down")
        print("provider down 30 s: \(down.count) calls while down, \(log.count - down.count) successful, backfill \(Int(Date().timeIntervalSince1970 - started)) s")
    }

    /// The provider as the pipeline sees it: when each call left and when its answer came back.
    final class Recording: EmbeddingProvider {
        let inner: any EmbeddingProvider
        let calls = Mutex<[(sent: ContinuousClock.Instant, answered: ContinuousClock.Instant, rateLimited: Bool, texts: [String])]>([])
        var model: ModelInfo { inner.model }
        init(_ inner: any EmbeddingProvider) { self.inner = inner }
        func prepare() async throws -> ModelInfo { try await inner.prepare() }
        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
            let sent = ContinuousClock.now
            do {
                let vectors = try await inner.embed(texts, mode: mode)
                calls.withLock { $0.append((sent, ContinuousClock.now, false, texts)) }
                return vectors
            } catch let error as EmbeddingError {
                var limited = false
                if case .rateLimited = error.kind { limited = true }
                calls.withLock { $0.append((sent, ContinuousClock.now, limited, texts)) }
                throw error
            }
        }
        func health() async -> ComponentHealth { await inner.health() }
    }

    @Test func a429StormWithRetryAfter2IsWaitedOutAndTheBackfillCompletes() async throws {
        let server = try ModelServer()
        let storm: [String: Any] = ["status": 429, "headers": ["retry-after": "2"], "body": ["error": ["message": "Rate limit reached"]]]
        try await server.inject(Array(repeating: storm, count: 6))
        let repos = SyntheticRepos.generate(count: 120, seed: 22)
        let store = MockStore(repos: repos)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 20
        configuration.parallelWorkers = 3
        configuration.retryDelayMs = 0
        let provider = Recording(try server.provider("openai", "timeout_seconds: 300\n"))
        let pipeline = try await Pipeline.start(provider: provider, providerName: "openai", store: store,
                                                configuration: configuration, instanceID: "storm", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 120)
        #expect(summary.failed == 0 && summary.retrying == 0)
        let log = try await server.callLog()
        #expect(log.filter { $0.status == 429 }.count == 6)
        // Seen from the pipeline: a call sent after a 429 came back (by any worker) waited out
        // the 2 s; calls already on their way could not know (nor a call let through just before,
        // whose `sent` can be stamped a few hundred ms late on a loaded machine).
        let calls = provider.calls.withLock { $0 }
        #expect(calls.filter(\.rateLimited).count == 6)
        for limited in calls where limited.rateLimited {
            for call in calls where call.sent > limited.answered + .milliseconds(500) {
                #expect(call.sent >= limited.answered + .seconds(2), "a call left \(limited.answered + .seconds(2) - call.sent) before the retry-after of 2 s was up")
            }
            // The batch the 429 answered is sent again only after the 2 s, with no margin.
            let retry = calls.filter { $0.texts == limited.texts && $0.sent > limited.sent }.min { $0.sent < $1.sent }
            #expect(retry.map { $0.sent >= limited.answered + .seconds(2) } == true,
                    "the rate-limited batch was sent again \(retry.map { "\($0.sent - limited.answered)" } ?? "never") after its 429")
        }
    }
}
