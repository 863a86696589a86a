import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Logging
import Synchronization
import Testing

/// A provider with a batch API in memory, over the Mock provider's vectors, whose batches can be
/// made to fail in the ways a real one does (accepted but the answer lost, ended, a refused line)
/// and which counts every text it embeds.
final class FakeBatchProvider: BatchEmbeddingProvider {
    struct Batch {
        var tag: String
        var requests: [BatchRequest]
        var state: BatchState
    }

    struct State {
        var batches: [String: Batch] = [:]
        var embeddedTexts: [String] = []
        /// The next submission is accepted but answered with a transport error.
        var loseNextAnswer = false
        /// Batches submitted from now on end without completing.
        var endNext = 0
        /// Every batch's answers fail to download.
        var answersFail = false
        /// Called with each submission, before it is accepted.
        var onSubmit: (@Sendable ([BatchRequest]) async -> Void)?
    }

    let mock = mockProvider { $0.dimensions = 8 }
    let state = Mutex(State())

    var model: ModelInfo { mock.model }
    func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] { try await mock.embed(texts, mode: mode) }
    func health() async -> ComponentHealth { .up }

    func submitBatch(_ requests: [BatchRequest], tag: String) async throws -> String {
        if let hook = state.withLock({ $0.onSubmit }) { await hook(requests) }
        return try state.withLock { state in
            let id = "batch_\(state.batches.count + 1)"
            let ended = state.endNext > 0
            if ended { state.endNext -= 1 }
            state.batches[id] = Batch(tag: tag, requests: requests, state: ended ? .ended("expired") : .completed)
            if state.loseNextAnswer {
                state.loseNextAnswer = false
                throw EmbeddingError(.retryable, "the connection dropped after the batch was sent")
            }
            return id
        }
    }

    func batch(taggedWith tag: String) async throws -> String? {
        state.withLock { $0.batches.first { $0.value.tag == tag }?.key }
    }

    func batchState(_ id: String) async throws -> BatchState {
        state.withLock { $0.batches[id]?.state ?? .ended("unknown") }
    }

    func batchAnswers(_ id: String) async throws -> [String: Result<[Float], ItemProblem>] {
        if state.withLock({ $0.answersFail }) { throw EmbeddingError(.retryable, "the output file could not be read") }
        let requests = state.withLock { state in state.batches[id].map { $0.state == .completed ? $0.requests : [] } ?? [] }
        var answers: [String: Result<[Float], ItemProblem>] = [:]
        let accepted = requests.filter { !$0.text.contains("refuse-me") }
        let vectors = try await mock.embed(accepted.map(\.text), mode: .document)
        state.withLock { $0.embeddedTexts += accepted.map(\.text) }
        for (request, vector) in zip(accepted, vectors) { answers[request.id] = .success(vector) }
        for request in requests where request.text.contains("refuse-me") {
            answers[request.id] = .failure(ItemProblem(reason: "the batch refused it (400): Invalid input", permanent: false))
        }
        return answers
    }
}

@Suite struct BatchBackfillTests {
    let repos = SyntheticRepos.generate(count: 230, seed: 12)

    func settings() -> BatchAPISettings {
        var settings = BatchAPISettings()
        settings.linesPerBatch = 50
        settings.jobsInFlight = 2
        settings.pollFrom = .milliseconds(1)
        settings.pollUpTo = .milliseconds(5)
        settings.endedBackoff = .milliseconds(10)
        return settings
    }

    /// Every repo ends with the vector of its own current text, embedded once by the provider.
    func expectEveryRepoEmbeddedOnce(_ store: MockStore, _ pipeline: Pipeline, _ provider: FakeBatchProvider, except: Int = 0) async throws {
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.embedded == repos.count - except && stats.leased == 0, "\(stats)")
        let texts = provider.state.withLock { $0.embeddedTexts }
        #expect(texts.count == Set(texts).count, "no text embedded twice: \(texts.count) embedded, \(Set(texts).count) distinct")
        #expect(try await store.batchJobs().isEmpty, "every job is done with")
    }

    @Test func everyPendingRepoIsEmbeddedThroughBatches() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        let pipeline = try await pipeline(provider, store)
        let summary = try await pipeline.batchBackfill(settings())
        #expect(summary.embedded == repos.count && provider.state.withLock { $0.batches.count } == 5, "\(summary)")
        try await expectEveryRepoEmbeddedOnce(store, pipeline, provider)
        // A second run finds nothing to do and submits nothing.
        #expect(try await pipeline.batchBackfill(settings()).embedded == 0)
        #expect(provider.state.withLock { $0.batches.count } == 5)
    }

    @Test func aBatchAcceptedButItsAnswerLostIsFoundByItsTag() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        provider.state.withLock { $0.loseNextAnswer = true }
        let pipeline = try await pipeline(provider, store)
        _ = try await pipeline.batchBackfill(settings())
        #expect(provider.state.withLock { $0.batches.count } == 5, "the lost answer's batch is found, not submitted again")
        try await expectEveryRepoEmbeddedOnce(store, pipeline, provider)
    }

    @Test func jobsCutShortAtEveryPointAreFinishedByTheNextRun() async throws {
        // A process killed (1) after saving a job and claiming its repos, before its items were
        // saved; (2) after saving its items, before submitting; (3) after the provider accepted
        // it, before its id was saved: the next run releases (1) and (2), finds (3) by its tag.
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        let pipeline = try await pipeline(provider, store)
        let model = pipeline.modelIdentity
        func claim(_ owner: String, _ count: Int) async throws -> [ClaimedRepo] {
            try await store.claimPending(ClaimRequest(owner: owner, limit: count, leaseDuration: .seconds(90_000), modelIdentity: model))
        }
        try await store.saveBatchJob(BatchJob(id: "cut-1", owner: "batch-one", modelIdentity: model, items: [], createdAt: Date()))
        _ = try await claim("batch-one", 30)
        let second = try await claim("batch-two", 30)
        let items = second.map { BatchJob.Item(repo: $0.repo.id, revision: $0.revision, hash: "h", request: "t0", attempts: 0) }
        try await store.saveBatchJob(BatchJob(id: "cut-2", owner: "batch-two", modelIdentity: model, items: items, createdAt: Date()))
        let third = try await claim("batch-three", 30)
        let document = pipeline.document
        var thirdItems: [BatchJob.Item] = []
        var requests: [BatchRequest] = []
        for claimed in third {
            let text = document.text(for: claimed.repo)
            requests.append(BatchRequest(id: "t\(requests.count)", text: text))
            thirdItems.append(BatchJob.Item(repo: claimed.repo.id, revision: claimed.revision, hash: document.hash(text), request: requests.last!.id, attempts: 0))
        }
        try await store.saveBatchJob(BatchJob(id: "cut-3", owner: "batch-three", modelIdentity: model, items: thirdItems, createdAt: Date()))
        _ = try await provider.submitBatch(requests, tag: "cut-3")
        #expect(try await store.stats(modelIdentity: model).leased == 90)

        _ = try await pipeline.batchBackfill(settings())
        try await expectEveryRepoEmbeddedOnce(store, pipeline, provider)
    }

    @Test func aTextChangedDuringItsBatchIsNotWrittenAndItsNewTextIs() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        var changed = repos[3]
        changed.description = "rewritten while its batch was out"
        let updated = changed
        provider.state.withLock { state in
            state.onSubmit = { _ in try? await store.upsert([updated]) }  // the first batch carries its old text
        }
        let pipeline = try await pipeline(provider, store)
        let summary = try await pipeline.batchBackfill(settings())
        #expect(summary.conflicts >= 1, "the old text's vector is refused: \(summary)")
        let stored = try await store.find(changed.id.rawValue, modelIdentity: pipeline.modelIdentity)
        #expect(stored.first?.state == .embedded && stored.first?.embeddingHash == pipeline.document.hash(pipeline.document.text(for: changed)),
                "the repo holds the vector of its new text: \(String(describing: stored.first))")
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == repos.count)
    }

    @Test func anEndedBatchPutsItsReposBackAndARefusedLineCountsAnAttempt() async throws {
        var repos = self.repos
        repos[7].description = "refuse-me please"
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        provider.state.withLock { $0.endNext = 1 }
        let pipeline = try await pipeline(provider, store) { $0.retryDelayMs = 60_000 }
        let summary = try await pipeline.batchBackfill(settings())
        #expect(summary.retrying == 1, "\(summary)")
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.embedded == repos.count - 1 && stats.leased == 0, "the ended batch's repos were embedded by a later one: \(stats)")
        let refused = try await store.find(repos[7].id.rawValue, modelIdentity: pipeline.modelIdentity).first
        #expect(refused?.attempts == 1 && refused?.lastError?.contains("Invalid input") == true, "\(String(describing: refused))")
    }

    /// The last repos pending are leased by a job cut short: the first claim of the next run
    /// finds nothing (they are still leased), the look releases them, and they are claimed then
    /// (the run ended with them pending before).
    @Test func reposReleasedFromAJobCutShortAreClaimedInTheSameRun() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        let pipeline = try await pipeline(provider, store)
        let model = pipeline.modelIdentity
        try await store.saveBatchJob(BatchJob(id: "cut", owner: "batch-cut", modelIdentity: model, items: [], createdAt: Date()))
        let leased = try await store.claimPending(ClaimRequest(owner: "batch-cut", limit: repos.count, leaseDuration: .seconds(90_000),
                                                               modelIdentity: model))
        #expect(leased.count == repos.count)
        var settings = settings()
        settings.jobsInFlight = 4
        _ = try await pipeline.batchBackfill(settings)
        try await expectEveryRepoEmbeddedOnce(store, pipeline, provider)
    }

    /// A provider that ends every batch (its queue full): the submissions wait longer each
    /// time, and the run stops after five in a row with the repos pending, not resubmitting
    /// them for ever.
    @Test func batchesEndedInARowBackOffAndStopTheRun() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        provider.state.withLock { $0.endNext = 1_000 }
        let pipeline = try await pipeline(provider, store)
        let started = ContinuousClock.now
        await #expect(throws: BatchAPIGaveUp.self) { try await pipeline.batchBackfill(settings()) }
        let submitted = provider.state.withLock { $0.batches.count }
        #expect(submitted <= 6, "at most the two in flight and the ones after them: \(submitted)")
        #expect(ContinuousClock.now - started >= .milliseconds(20 + 80), "after 2 ended, 20 ms; after 4, 80 ms")
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.leased == 0 && stats.pending == repos.count, "\(stats)")
        #expect(try await store.batchJobs().isEmpty)
    }

    /// Two `backfill --batch-api` on one database: the second waits for the first to end.
    @Test func aSecondBatchBackfillWaitsForTheFirst() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        let submitting = Mutex(false)  // the first has the turn once it submits
        provider.state.withLock { $0.onSubmit = { _ in submitting.withLock { $0 = true }; try? await Task.sleep(for: .milliseconds(100)) } }
        let first = try await pipeline(provider, store)
        let second = try await pipeline(provider, store)
        var settings = settings()
        settings.exclusiveFor = .seconds(5)
        let ends = Mutex<[String]>([])
        let one = Task { [settings] in
            _ = try await first.batchBackfill(settings)
            ends.withLock { $0.append("first") }
        }
        #expect(try await waitUntil(timeout: .seconds(30)) { submitting.withLock { $0 } }, "the first submits")
        _ = try await second.batchBackfill(settings)
        ends.withLock { $0.append("second") }
        try await one.value
        #expect(ends.withLock { $0 } == ["first", "second"], "the second ran only after the first ended")
        try await expectEveryRepoEmbeddedOnce(store, first, provider)
    }

    /// Answers that can never be read: each job is given up after its tries, its repos count a
    /// failed attempt each, and max_attempts ends it (not bought again for ever).
    @Test func answersThatCannotBeReadEndInFailuresNotEndlessBatches() async throws {
        let store = MockStore(repos: repos)
        let provider = FakeBatchProvider()
        provider.state.withLock { $0.answersFail = true }
        let pipeline = try await pipeline(provider, store) { $0.maxAttempts = 2 }
        _ = try await pipeline.batchBackfill(settings())
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.failed == repos.count && stats.leased == 0, "\(stats)")
        let batches = provider.state.withLock { $0.batches.count }
        #expect(batches == 10, "two attempts of five batches: \(batches)")
        let one = try await store.find(repos[0].id.rawValue, modelIdentity: pipeline.modelIdentity).first
        #expect(one?.lastError?.contains("could not be read") == true, "\(String(describing: one?.lastError))")
    }
}
