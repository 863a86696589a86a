import EmbedStarCore
import EmbedStarMockStore
import Foundation
import Logging
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
        let protection = ProviderProtection(resilience, provider: "openai")
        try await server.mode(["down_for": 30])
        let started = Date().timeIntervalSince1970
        let pipeline = try await Pipeline.start(provider: try server.provider("openai", "timeout_seconds: 120\n"), providerName: "openai", store: store,
                                                configuration: configuration, protection: protection, instanceID: "down", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        let stats = try await store.stats(model: pipeline.modelIdentity)
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
        let pipeline = try await Pipeline.start(provider: try server.provider("openai", "timeout_seconds: 120\n"), providerName: "openai", store: store,
                                                configuration: configuration, instanceID: "storm", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(try await store.stats(model: pipeline.modelIdentity).embedded == 120)
        #expect(summary.failed == 0 && summary.retrying == 0)
        let log = try await server.callLog()
        #expect(log.filter { $0.status == 429 }.count == 6)
        // Calls already on their way when a 429 was answered (arriving within 50 ms of it, from
        // the other workers) could not know; every later one must wait out the 2 s.
        for (index, limited) in log.enumerated() where limited.status == 429 {
            for call in log[(index + 1)...] where call.at > limited.at + 0.05 {
                #expect(call.at >= limited.at + 2, "a call came \(limited.at + 2 - call.at) s before the retry-after of 2 s was up")
            }
        }
    }
}
