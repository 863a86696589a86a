import EmbedStarApp
import EmbedStarCore
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Synchronization
import Testing

/// A store whose claims take `claimLatency` (as a database round trip does) and that records how
/// many claims were in flight at once.
final class ClaimCountingStore: ForwardingStore {
    let inner: any RepoStore
    let claimLatency: Duration
    private struct Counts { var started = 0, finished = 0, inFlight = 0, overlappingAfterWarmUp = 0 }
    private let counts = Mutex(Counts())

    init(_ inner: any RepoStore, claimLatency: Duration) {
        self.inner = inner
        self.claimLatency = claimLatency
    }

    var finished: Int { counts.withLock { $0.finished } }
    /// Claims that started while another was in flight, after the first `warmUp` claims.
    var overlapping: Int { counts.withLock { $0.overlappingAfterWarmUp } }
    static let warmUp = 8

    func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        counts.withLock { counts in
            counts.started += 1
            if counts.inFlight > 0, counts.started > Self.warmUp { counts.overlappingAfterWarmUp += 1 }
            counts.inFlight += 1
        }
        defer { counts.withLock { $0.inFlight -= 1; $0.finished += 1 } }
        try await Task.sleep(for: claimLatency)
        return try await inner.claimPending(request)
    }
}

/// A provider that records how many calls were in flight at once.
final class ConcurrencyProvider: EmbeddingProvider {
    let inner: any EmbeddingProvider
    var model: ModelInfo { inner.model }
    private let state = Mutex((inFlight: 0, most: 0))

    init(_ inner: any EmbeddingProvider) { self.inner = inner }

    var mostAtOnce: Int { state.withLock { $0.most } }

    func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        state.withLock { $0.inFlight += 1; $0.most = max($0.most, $0.inFlight) }
        defer { state.withLock { $0.inFlight -= 1 } }
        return try await inner.embed(texts, mode: mode)
    }

    func health() async -> ComponentHealth { await inner.health() }
}

@Suite struct IdleTests {
    /// Four workers with nothing to do: one looks for work every poll interval, the others wait,
    /// so an idle instance makes one claim at a time (the cost of a short poll interval).
    @Test func idleWorkersLeaveTheLookingToOne() async throws {
        let store = ClaimCountingStore(MockStore(repos: []), claimLatency: .milliseconds(5))
        let pipeline = try await pipeline(mockProvider(), store) {
            $0.parallelWorkers = 4
            $0.pollIntervalMs = 10
        }
        let stop = StopSignal()
        let run = Task { try await pipeline.run(stop: stop) }
        try await waitUntil { store.finished >= 40 }
        stop.trigger()
        _ = try await run.value
        #expect(store.overlapping == 0, "idle claims overlapped \(store.overlapping) times")
    }

    /// The worker that finds work wakes the others: a burst of new repos is embedded by every
    /// worker at once, not by the one that was looking.
    @Test func theWorkerThatFindsWorkWakesTheOthers() async throws {
        let mock = MockStore(repos: [])
        let store = ClaimCountingStore(mock, claimLatency: .zero)
        // Calls of 1 s: time for the woken workers to reach the provider while the first's runs.
        let provider = ConcurrencyProvider(mockProvider { $0.latencyMs = 1_000 })
        let pipeline = try await pipeline(provider, store) {
            $0.parallelWorkers = 4
            $0.pollIntervalMs = 10
            $0.batchSize = 10
        }
        let stop = StopSignal()
        let run = Task { try await pipeline.run(stop: stop) }
        try await waitUntil { store.finished >= 10 }
        try await mock.upsert(SyntheticRepos.generate(count: 40, seed: 9))
        try await waitUntil { try await mock.stats(modelIdentity: pipeline.modelIdentity).embedded == 40 }
        stop.trigger()
        let summary = try await run.value
        #expect(summary.embedded == 40)
        #expect(provider.mostAtOnce >= 3, "at most \(provider.mostAtOnce) provider calls ran at once")
    }
}

/// A store on which another instance holds a batch: it writes it when the pipeline asks for
/// stats the second time (after it began waiting for it), and counts the idle work asked after that.
final class OtherInstanceStore: ForwardingStore {
    let inner: any RepoStore
    let model: String
    private struct State { var statsCalls = 0, maintainedAfterWrite = 0, written = false, held: [ClaimedRepo] = [] }
    private let state = Mutex(State())

    init(_ inner: any RepoStore, model: String) {
        self.inner = inner
        self.model = model
    }

    var maintainedAfterWrite: Int { state.withLock { $0.maintainedAfterWrite } }

    func holdBatch(limit: Int) async throws {
        let held = try await inner.claimPending(ClaimRequest(owner: "other", limit: limit, leaseDuration: .seconds(60), modelIdentity: model))
        state.withLock { $0.held = held }
    }

    func maintain(owner: String, modelIdentity model: String) async throws {
        state.withLock { if $0.written { $0.maintainedAfterWrite += 1 } }
        try await inner.maintain(owner: owner, modelIdentity: model)
    }

    func stats(modelIdentity model: String) async throws -> StoreStats {
        let (call, held) = state.withLock { state in
            state.statsCalls += 1
            return (state.statsCalls, state.held)
        }
        if call == 2 {
            _ = try await inner.write(held.map {
                RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: self.model, change: .embedded(vector: [Float](repeating: 0.5, count: 32), contentHash: "h", generatedAt: Date()))
            }, owner: "other")
            state.withLock { $0.written = true }
        }
        return try await inner.stats(modelIdentity: model)
    }
}

/// Counts the store's idle work.
final class MaintenanceCounter: ForwardingStore {
    let inner: any RepoStore
    private let calls = Mutex(0)

    init(_ inner: any RepoStore) { self.inner = inner }

    var maintained: Int { calls.withLock { $0 } }

    func maintain(owner: String, modelIdentity model: String) async throws {
        calls.withLock { $0 += 1 }
        try await inner.maintain(owner: owner, modelIdentity: model)
    }
}

@Suite struct BackfillEndTests {
    /// A backfill that ends with a repo waiting out a retry (pending, so the queue is never dry)
    /// still does the store's idle work: otherwise a nightly backfill that always leaves one
    /// repo retrying would never build the search index or pack the codes.
    @Test func aBackfillThatEndsWithAReposRetryingDoesTheIdleWork() async throws {
        let repos = SyntheticRepos.generate(count: 10, seed: 7)
        let store = MaintenanceCounter(MockStore(repos: repos))
        let provider = mockProvider { $0.rejectTextsContaining = [repos[3].fullName] }
        let pipeline = try await pipeline(provider, store) {
            $0.retryDelayMs = 60_000
            $0.pollIntervalMs = 10
        }
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == 9)
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).pending == 1, "the rejected repo waits out its retry")
        #expect(store.maintained >= 1, "the backfill ended without the store's idle work")
    }

    /// What waits for the queue to run dry is the store's `maintain`. A backfill that waited for
    /// another instance's leases asks for it after they were written, even when they were
    /// written between its last claim and its last look at the stats.
    @Test func aBackfillThatWaitedForOthersDoesTheIdleWorkAtTheEnd() async throws {
        let mock = MockStore(repos: SyntheticRepos.generate(count: 20, seed: 6))
        let probe = try await pipeline(mockProvider(), mock)
        let store = OtherInstanceStore(mock, model: probe.modelIdentity)
        try await store.holdBatch(limit: 10)
        let pipeline = try await pipeline(mockProvider(), store) {
            $0.parallelWorkers = 1
            $0.pollIntervalMs = 10
        }
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == 10)
        #expect(store.maintainedAfterWrite >= 1, "no idle work after the other instance's batch was written")
        let stats = try await mock.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.pending == 0 && stats.leased == 0)
    }
}
