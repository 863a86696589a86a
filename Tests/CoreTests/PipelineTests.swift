import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import Foundation
import Logging
import Synchronization
import EmbedStarTesting
import Testing

/// Wraps a provider and records every call, to check batching from the outside.
final class RecordingProvider: EmbeddingProvider {
    let inner: any EmbeddingProvider
    let model: ModelInfo
    private let calls = Mutex<[[String]]>([])

    init(_ inner: any EmbeddingProvider, model: ModelInfo? = nil) {
        self.inner = inner
        self.model = model ?? inner.model
    }

    var batches: [[String]] { calls.withLock { $0 } }

    func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        calls.withLock { $0.append(texts) }
        return try await inner.embed(texts, mode: mode)
    }

    func health() async -> ComponentHealth { await inner.health() }
}

func mockProvider(_ configure: (inout MockProvider.Configuration) -> Void = { _ in }) -> MockProvider {
    var configuration = MockProvider.Configuration()
    configuration.dimensions = 32
    configure(&configuration)
    return MockProvider(configuration: configuration)
}

func pipeline(
    _ provider: any EmbeddingProvider, _ store: any RepoStore, name: String = "mock",
    _ configure: (inout PipelineConfiguration) -> Void = { _ in }
) async throws -> Pipeline {
    var configuration = PipelineConfiguration()
    configuration.batchSize = 10
    configuration.parallelWorkers = 3
    configuration.retryDelayMs = 0
    configure(&configuration)
    return try await Pipeline.start(provider: provider, providerName: name, store: store, configuration: configuration,
                                    instanceID: "test-\(UUID().uuidString.prefix(6))", logger: Logger(label: "test"))
}

@Suite struct PipelineTests {
    let repos = SyntheticRepos.generate(count: 120, seed: 7)

    @Test func everyRepoGetsTheVectorOfItsOwnText() async throws {
        let store = MockStore(repos: repos)
        let provider = mockProvider()
        let pipeline = try await pipeline(provider, store)
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == repos.count)
        #expect(summary.failed == 0)
        let builder = try TextBuilder()
        for repo in repos {
            let entry = try #require(await store.entry(repo.id))
            let text = builder.text(for: repo)
            #expect(entry.embedding == MockProvider.vector(for: text, dimensions: 32), "\(repo.id)")
            #expect(entry.embeddingHash == ContentHash.make(text: text, model: pipeline.modelIdentity))
            #expect(entry.embeddingModel == "mock/mock-embed@32")
        }
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats == StoreStats(total: repos.count, embedded: repos.count, pending: 0, failed: 0, leased: 0))
        // Three workers, one queue: no text was sent twice.
        #expect(provider.statistics.texts == repos.count)
    }

    @Test func batchesRespectCountAndTokenBudget() async throws {
        let store = MockStore(repos: repos)
        let mock = mockProvider()
        var model = mock.model
        model.maxBatchSize = 4
        model.maxBatchTokens = 60
        let provider = RecordingProvider(mock, model: model)
        let summary = try await pipeline(provider, store) { $0.batchSize = 25 }.backfill()
        #expect(summary.embedded == repos.count)
        let batches = provider.batches
        #expect(!batches.isEmpty)
        for batch in batches {
            #expect(batch.count <= 4)
            let tokens = batch.map(TokenEstimator.estimate).reduce(0, +)
            #expect(tokens <= 60 || batch.count == 1, "batch of \(batch.count) costs \(tokens) tokens")
        }
        #expect(batches.map(\.count).reduce(0, +) == repos.count)
    }

    @Test func unchangedTextIsNotSentAgainButChangedTextIs() async throws {
        let store = MockStore(repos: repos)
        let provider = mockProvider()
        let first = try await pipeline(provider, store)
        _ = try await first.backfill()
        let callsAfterFirst = provider.statistics.texts

        // The collector bumps updated_at and stars on every repo: nothing to embed.
        for var repo in repos {
            repo.updatedAt = Date()
            repo.stars += 1
            await store.upsert(repo)
        }
        var summary = try await first.backfill()
        #expect(summary.unchanged == repos.count)
        #expect(summary.embedded == 0)
        #expect(summary.providerCalls == 0)
        #expect(provider.statistics.texts == callsAfterFirst)

        // Two descriptions change: exactly those two are embedded again.
        var changed = repos[3]
        changed.description = "Completely new description about TOML parsing"
        await store.upsert(changed)
        var other = repos[50]
        other.topics.append("brand-new-topic")
        await store.upsert(other)
        summary = try await first.backfill()
        #expect(summary.embedded == 2)
        #expect(provider.statistics.texts == callsAfterFirst + 2)
        let entry = try #require(await store.entry(changed.id))
        #expect(entry.embedding == MockProvider.vector(for: try TextBuilder().text(for: changed), dimensions: 32))
    }

    @Test func anotherModelMakesEverythingPendingAgain() async throws {
        let store = MockStore(repos: repos)
        _ = try await pipeline(mockProvider(), store).backfill()
        let other = mockProvider { $0.model = "mock-embed-v2" }
        let summary = try await pipeline(other, store).backfill()
        #expect(summary.embedded == repos.count)
        #expect(other.statistics.texts == repos.count)
    }

    @Test func rejectedItemIsIsolatedAndTheRestOfItsBatchIsEmbedded() async throws {
        let store = MockStore(repos: repos)
        let poison = repos[17]
        let provider = mockProvider { $0.rejectTextsContaining = [poison.fullName] }
        let summary = try await pipeline(provider, store).backfill()
        #expect(summary.embedded == repos.count - 1)
        #expect(summary.failed == 1)
        let entry = try #require(await store.entry(poison.id))
        #expect(entry.failed)
        #expect(entry.embedding == nil)
        #expect(entry.lastError?.contains("rejected by the provider: mock provider rejects 1 input(s)") == true)
        // Each attempt is counted; the repo leaves the queue at max_attempts (5), not before.
        #expect(entry.attempts == 5)
        let stats = try await store.stats(modelIdentity: "mock/mock-embed@32")
        #expect(stats.failed == 1 && stats.embedded == repos.count - 1 && stats.pending == 0)
        // retry-failed puts it back in the queue with its attempts cleared.
        #expect(try await store.resetFailed() == 1)
        #expect(try await store.stats(modelIdentity: "mock/mock-embed@32").pending == 1)
        #expect(await store.entry(poison.id)?.attempts == 0)
    }

    /// A provider that rejects a bad input without saying which one: the batch is bisected.
    final class OpaqueRejectingProvider: EmbeddingProvider {
        let inner = mockProvider()
        var model: ModelInfo { inner.model }
        let poison: String
        init(poison: String) { self.poison = poison }
        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
            if texts.contains(where: { $0.contains(poison) }) { throw EmbeddingError(.invalidInput(indices: nil), "input too long") }
            return try await inner.embed(texts, mode: mode)
        }
        func health() async -> ComponentHealth { .up }
    }

    @Test func rejectionWithoutIndicesIsBisected() async throws {
        let store = MockStore(repos: repos)
        let summary = try await pipeline(OpaqueRejectingProvider(poison: repos[5].fullName), store).backfill()
        #expect(summary.embedded == repos.count - 1)
        #expect(summary.failed == 1)
        #expect(try #require(await store.entry(repos[5].id)).failed)
    }

    @Test func invalidVectorsAreNeverWrittenAndCountAsAttempts() async throws {
        let store = MockStore(repos: Array(repos.prefix(20)))
        let provider = mockProvider { $0.nanRate = 1 }
        // Retry delay is zero here, so one backfill makes both attempts: the second one fails them for good.
        let summary = try await pipeline(provider, store) { $0.maxAttempts = 2 }.backfill()
        #expect(summary.embedded == 0)
        #expect(summary.retrying == 20)
        #expect(summary.failed == 20)
        let entry = try #require(await store.entry(repos[0].id))
        #expect(entry.embedding == nil)
        #expect(entry.attempts == 2)
        #expect(entry.failed)
        #expect(entry.lastError?.contains("NaN") == true)
        #expect(try await store.stats(modelIdentity: "mock/mock-embed@32").failed == 20)
        #expect(try await store.resetFailed() == 20)
        let healthy = try await pipeline(mockProvider(), store).backfill()
        #expect(healthy.embedded == 20)
    }

    /// Item 8 of issue 14: a backend that ignores the configured dimensions answers every
    /// vector of another size. That is one configuration error, not a fault of each repo.
    @Test func aBackendThatIgnoresTheDimensionsStopsTheRunAndFailsNoRepo() async throws {
        let store = MockStore(repos: Array(repos.prefix(30)))
        let provider = mockProvider { $0.wrongDimensionRate = 1 }
        let error = await #expect(throws: EmbeddingError.self) { try await pipeline(provider, store).backfill() }
        #expect(error?.kind == .fatal)
        #expect(error?.message.contains("31 dimensions, but the model mock-embed of mock makes 32") == true, "\(String(describing: error))")
        let stats = try await store.stats(modelIdentity: "mock/mock-embed@32")
        #expect(stats == StoreStats(total: 30, embedded: 0, pending: 30, failed: 0, leased: 0))
        #expect(try #require(await store.entry(repos[0].id)).attempts == 0)
        #expect(provider.statistics.calls <= 3, "the run stops at the first answers (one per worker), not after max_attempts per repo")
    }

    /// Item 10 of issue 14: a changed text template makes every repo pending (as a model
    /// change, at the re-embed pace); the default template keeps the identity it always had.
    @Test func aChangedTemplateMakesEveryRepoPending() async throws {
        let store = MockStore(repos: Array(repos.prefix(10)))
        let first = try await pipeline(mockProvider(), store)
        #expect(first.modelIdentity == "mock/mock-embed@32")
        #expect(try await first.backfill().embedded == 10)
        var text = TextConfiguration()
        text.template = "{full_name}: {description}"
        let changed = try await Pipeline.start(provider: mockProvider(), providerName: "mock", store: store, configuration: PipelineConfiguration(),
                                               text: text, instanceID: "templated", logger: Logger(label: "test"))
        #expect(changed.modelIdentity.hasPrefix("mock/mock-embed@32+t"))
        #expect(try await store.stats(modelIdentity: changed.modelIdentity).pending == 10)
        #expect(try await changed.backfill().embedded == 10)
        #expect(try await store.coverage() == [changed.modelIdentity: 10])
    }

    /// One vector of the wrong size among good ones is that repo's problem alone.
    @Test func oneVectorOfTheWrongSizeFailsOnlyItsRepo() async throws {
        struct ShortensOne: EmbeddingProvider {
            let inner = mockProvider()
            let victim: String
            var model: ModelInfo { inner.model }
            func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
                var vectors = try await inner.embed(texts, mode: mode)
                for (index, text) in texts.enumerated() where text.contains(victim) { vectors[index].removeLast() }
                return vectors
            }
            func health() async -> ComponentHealth { .up }
        }
        let store = MockStore(repos: Array(repos.prefix(10)))
        let summary = try await pipeline(ShortensOne(victim: repos[3].fullName), store) { $0.maxAttempts = 1 }.backfill()
        #expect(summary.embedded == 9)
        #expect(summary.failed == 1)
        #expect(try #require(await store.entry(repos[3].id)).lastError?.contains("31 dimensions, expected 32") == true)
    }

    @Test func transientErrorsLeaveReposPendingWithTheirReason() async throws {
        let store = MockStore(repos: Array(repos.prefix(10)))
        let summary = try await pipeline(mockProvider { $0.errorRate = 1 }, store) { $0.retryDelayMs = 60_000 }.backfill()
        #expect(summary.retrying == 10)
        let stats = try await store.stats(modelIdentity: "mock/mock-embed@32")
        #expect(stats.pending == 10 && stats.failed == 0)
        #expect(try #require(await store.entry(repos[0].id)).lastError?.contains("mock transient failure") == true)
    }

    @Test func runFatalErrorStopsTheRunAndReleasesClaims() async throws {
        let store = MockStore(repos: repos)
        let pipeline = try await pipeline(mockProvider { $0.failAll = true }, store)
        await #expect(throws: EmbeddingError.self) { _ = try await pipeline.backfill() }
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.pending == repos.count)
        #expect(stats.leased == 0)
        #expect(stats.failed == 0)
    }

    @Test func repoChangedDuringItsBatchStaysPending() async throws {
        let store = MockStore(repos: Array(repos.prefix(5)))
        let pipeline = try await pipeline(mockProvider(), store)
        let claimed = try await store.claimPending(ClaimRequest(owner: pipeline.instanceID, limit: 5, leaseDuration: .seconds(60), modelIdentity: pipeline.modelIdentity))
        var edited = repos[2]
        edited.description = "edited while being embedded"
        await store.upsert(edited)
        let summary = try await pipeline.embedClaimed(claimed)
        #expect(summary.embedded == 4)
        #expect(summary.conflicts == 1)
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).pending == 1)
        let next = try await pipeline.backfill()
        #expect(next.embedded == 1)
        let entry = try #require(await store.entry(edited.id))
        #expect(entry.embedding == MockProvider.vector(for: try TextBuilder().text(for: edited), dimensions: 32))
    }

    @Test func identicalTextsAreEmbeddedOnce() async throws {
        let twins = (0..<6).map { Repo(id: RepoID("repo:t\($0)"), fullName: "same/name", description: "same") }
        let store = MockStore(repos: twins)
        let provider = mockProvider()
        let summary = try await pipeline(provider, store).backfill()
        #expect(summary.embedded == 6)
        #expect(provider.statistics.texts == 1)
    }

    @Test func runStopsWhenSignalledAndPicksUpNewWorkWhileRunning() async throws {
        let store = MockStore(repos: Array(repos.prefix(10)))
        let pipeline = try await pipeline(mockProvider(), store) { $0.pollIntervalMs = 20 }
        let stop = StopSignal()
        let task = Task { try await pipeline.run(stop: stop) }
        try await waitUntil { try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 10 }
        await store.upsert(repos[50])
        try await waitUntil { try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 11 }
        stop.trigger()
        let summary = try await task.value
        #expect(summary.embedded == 11)
    }
}

/// Polls `condition` until it holds, failing after `timeout`.
@Suite struct RateLimitTests {
    @Test func rateLimitedReposGoBackWithoutAnAttemptCounted() async throws {
        let repos = SyntheticRepos.generate(count: 5, seed: 2)
        let store = MockStore(repos: repos)
        let provider = mockProvider { $0.rateLimitRate = 1; $0.retryAfterMs = 1 }
        let pipeline = try await pipeline(provider, store) { $0.parallelWorkers = 1 }
        let summary = try #require(try await pipeline.embedNextBatch())
        #expect(summary.released == 5)
        #expect(summary.retrying == 0 && summary.failed == 0)
        // The call and retries after each retry-after, up to the retry policy's attempts.
        #expect(provider.statistics.calls == pipeline.provider.retry.maxAttempts)
        let entry = try #require(await store.entry(repos[0].id))
        #expect(entry.attempts == 0)
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.pending == 5 && stats.leased == 0)
    }
}

@Suite struct PipelinePrefixTests {
    @Test func theDocumentPrefixIsEmbeddedAndHashedSoChangingItReembeds() async throws {
        let repos = SyntheticRepos.generate(count: 5, seed: 4)
        let store = MockStore(repos: repos)
        let provider = mockProvider()
        var text = TextConfiguration()
        text.documentPrefix = "passage: "
        let first = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: PipelineConfiguration(),
                                             text: text, instanceID: "t", logger: Logger(label: "test"))
        #expect(try await first.backfill().embedded == 5)
        let expected = "passage: " + (try TextBuilder().text(for: repos[0]))
        #expect(await store.entry(repos[0].id)?.embedding == MockProvider.vector(for: expected, dimensions: 32))
        // Same prefix again: nothing to do. Another prefix: every repo again.
        #expect(try await first.backfill().providerCalls == 0)
        for repo in repos { var changed = repo; changed.stars += 1; await store.upsert(changed) }
        #expect(try await first.backfill().unchanged == 5)
        text.documentPrefix = "search_document: "
        let second = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: PipelineConfiguration(),
                                              text: text, instanceID: "t", logger: Logger(label: "test"))
        #expect(second.modelIdentity != first.modelIdentity)
        #expect(try await second.backfill().embedded == 5)
    }
}
