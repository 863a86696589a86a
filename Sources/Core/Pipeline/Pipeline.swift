import Foundation
import Logging
import Metrics
import Synchronization

/// claim -> text -> hash -> skip unchanged -> batch -> provider -> validate -> conditional write.
///
/// Workers share nothing but the store's queue: each claims its own batch under a lease, so
/// several workers (and several instances) never embed the same repo twice.
public final class Pipeline: Sendable {
    public let provider: any EmbeddingProvider
    public let store: any RepoStore
    public let providerName: String
    public let configuration: PipelineConfiguration
    public let instanceID: String
    /// The model as learned at start.
    public let model: ModelInfo
    /// Names the model that makes this run's vectors (``ModelIdentity``).
    public let modelIdentity: String
    private let document: DocumentText
    /// What goes before each document text (part of the hashed text).
    public let prefixes: TaskPrefixes
    /// Rate limiter, circuit breaker, retries, cache and vector checks for the provider.
    public let protection: ProviderProtection
    private let logger: Logger
    /// Learned from the first vector when the provider could not say; every later vector must match.
    private let learnedDimensions: Mutex<Int?>
    private let metrics: PipelineMetrics
    /// Liveness and progress, for the monitoring server.
    public let activity: PipelineActivity
    /// Repos this process is working on now. After a store outage every other lease of this
    /// instance is an orphan (a claim whose answer was lost, a release that failed) and is
    /// released, so no repo stays leased until its lease runs out.
    private let inFlight = Mutex<Set<RepoID>>([])
    /// The pace of re-embedding repos another model embedded (`pipeline.reembed_per_minute`).
    private let stalePace: Mutex<RateLimitBudget>
    /// One idle worker looks for work; the others wait for it (``IdleWatch``).
    private let idleWatch = IdleWatch()

    /// Prepares the store and the provider (learning the model), then returns a pipeline ready to run.
    public static func start(
        provider: any EmbeddingProvider,
        providerName: String,
        store: any RepoStore,
        configuration: PipelineConfiguration,
        text: TextConfiguration = TextConfiguration(),
        protection: ProviderProtection? = nil,
        instanceID: String,
        logger: Logger
    ) async throws -> Pipeline {
        try configuration.validate()
        try await store.prepare()
        let model = try await preparedModel(provider, giveUpAfter: .seconds(configuration.storeOutageSeconds), logger: logger)
        return try Pipeline(provider: provider, providerName: providerName, store: store, model: model,
                            configuration: configuration, text: text,
                            protection: protection ?? ProviderProtection(provider: providerName, logger: logger),
                            instanceID: instanceID, logger: logger)
    }

    /// The provider's model facts; a retryable failure (the provider is down at start) is tried
    /// again with backoff until `giveUpAfter`, never answered with a guess.
    static func preparedModel(_ provider: any EmbeddingProvider, giveUpAfter: Duration, logger: Logger) async throws -> ModelInfo {
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            let delay = RetryPolicy.halfJitter(step: attempt, base: .seconds(1), cap: .seconds(30))
            attempt += 1
            do {
                return try await provider.prepare()
            } catch let error as EmbeddingError where error.kind == .retryable && ContinuousClock.now - started + delay < giveUpAfter {
                logger.warning("the provider cannot describe its model yet; trying again", metadata: [
                    "error": "\(error)", "retry_in_seconds": "\(delay.seconds)",
                ])
                try await Task.sleep(for: delay)
            }
        }
    }

    init(
        provider: any EmbeddingProvider, providerName: String, store: any RepoStore, model: ModelInfo,
        configuration: PipelineConfiguration, text: TextConfiguration, protection: ProviderProtection, instanceID: String, logger: Logger
    ) throws {
        self.protection = protection
        self.provider = provider
        self.providerName = providerName
        self.store = store
        self.model = model
        self.configuration = configuration
        self.instanceID = instanceID
        self.logger = logger
        document = try DocumentText(providerName: providerName, model: model, text: text)
        prefixes = document.prefixes
        modelIdentity = document.modelIdentity
        learnedDimensions = Mutex(model.dimensions)
        metrics = PipelineMetrics(provider: providerName, model: model.name)
        activity = PipelineActivity(workers: configuration.parallelWorkers)
        stalePace = Mutex(RateLimitBudget(requestsPerMinute: configuration.reembedPerMinute, tokensPerMinute: nil, now: protection.clock.now()))
    }

    // MARK: Loops

    /// Processes everything pending, then returns. Stops early (finishing batches in flight)
    /// when `stop` triggers.
    public func backfill(stop: StopSignal = StopSignal(), onBatch: @escaping @Sendable (PipelineSummary) -> Void = { _ in }) async throws -> PipelineSummary {
        var total = PipelineSummary()
        var waitingSince: ContinuousClock.Instant?
        var lastPending: Int?
        var roundAfterLeasesRanOut = false
        while true {
            total.add(try await workers(stop: stop, idle: .finish, onBatch: onBatch))
            // Nothing is in flight now: leases still held are orphans of an outage, and their
            // repos still need embedding.
            if stop.isStopped { break }
            if try await releaseOrphans() > 0 { continue }
            // Nothing was claimable, but repos may still be leased elsewhere: by an instance that
            // was killed (until its lease expires) or by one still embedding them. The backfill
            // waits for those, until none is leased or nothing moved for longer than a lease.
            // Repos waiting out a retry are not waited for: they are in the summary as retrying.
            let stats = try await store.stats(model: modelIdentity)
            if stats.pending == 0 {
                // Stores do what waits for the queue to run dry on a claim that finds nothing
                // (SurrealDB defines its vector index, SQLite packs its codes). When this instance
                // waited for others, it finishes last: one more round of claims does that now.
                if lastPending != nil {
                    lastPending = nil
                    total.add(try await workers(stop: stop, idle: .finish, onBatch: onBatch))
                }
                break
            }
            if stats.leased == 0 {
                // Leases that ran out since the round began are claimable now: one more round,
                // then what is left waits out a retry.
                if roundAfterLeasesRanOut { break }
                roundAfterLeasesRanOut = true
                continue
            }
            let now = ContinuousClock.now
            if stats.pending != lastPending {
                lastPending = stats.pending
                waitingSince = now
            } else if let since = waitingSince, now - since > .seconds(configuration.leaseSeconds) + .milliseconds(2 * configuration.pollIntervalMs) {
                logger.warning("repos are still pending but none could be claimed for longer than a lease; stopping", metadata: [
                    "pending": "\(stats.pending)", "leased": "\(stats.leased)",
                ])
                break
            }
            if waitingSince == now {
                logger.notice("waiting for repos leased by other instances (or by one that was killed, until its leases expire)", metadata: [
                    "pending": "\(stats.pending)", "leased": "\(stats.leased)",
                ])
            }
            await stop.sleep(for: .milliseconds(configuration.pollIntervalMs))
        }
        return total
    }

    /// Keeps embedding as repos become pending, polling when idle, until `stop` triggers.
    public func run(stop: StopSignal, onBatch: @escaping @Sendable (PipelineSummary) -> Void = { _ in }) async throws -> PipelineSummary {
        try await workers(stop: stop, idle: .poll, onBatch: onBatch)
    }

    private enum IdleBehaviour { case finish, poll }

    private func workers(stop: StopSignal, idle: IdleBehaviour, onBatch: @escaping @Sendable (PipelineSummary) -> Void) async throws -> PipelineSummary {
        activity.started(workers: configuration.parallelWorkers)
        return try await withThrowingTaskGroup(of: PipelineSummary.self) { group in
            for worker in 0..<configuration.parallelWorkers {
                group.addTask {
                    try await self.workerLoop(worker, stop: stop, idle: idle, onBatch: onBatch)
                }
            }
            var total = PipelineSummary()
            do {
                for try await summary in group { total.add(summary) }
            } catch {
                // One worker hit a run-fatal error: the others finish their batch and stop.
                stop.trigger()
                while let next = try? await group.next() { total.add(next) }
                throw error
            }
            return total
        }
    }

    private func workerLoop(_ worker: Int, stop: StopSignal, idle: IdleBehaviour, onBatch: @Sendable (PipelineSummary) -> Void) async throws -> PipelineSummary {
        var total = PipelineSummary()
        var outageStarted: ContinuousClock.Instant?
        var failures = 0
        var watching = false
        /// This worker stops watching for work (it found some, hit an error or ends).
        func stopWatching() {
            if watching {
                watching = false
                idleWatch.stepDown()
            }
        }
        defer { stopWatching() }
        while !stop.isStopped {
            activity.heartbeat()
            if let open = protection.breaker.openFor, open > .zero {
                // No provider calls while the circuit is open, and no claims that would only be
                // handed back: wait for the half-open probe.
                await stop.sleep(for: min(open, .milliseconds(configuration.pollIntervalMs)))
                continue
            }
            let summary: PipelineSummary?
            do {
                if failures > 0 { try await releaseOrphans() }
                summary = try await processNextBatch(paced: idle == .poll)
                outageStarted = nil
                failures = 0
            } catch let error as EmbeddingError {
                throw error
            } catch where !(error is CancellationError) && (error.isRetryable || idle == .poll) {
                // The store is unreachable or restarting: wait and try again. A backfill gives
                // up after `store_outage_seconds`; the service never does.
                stopWatching()
                let started = outageStarted ?? ContinuousClock.now
                outageStarted = started
                if idle == .finish, ContinuousClock.now - started > .seconds(configuration.storeOutageSeconds) { throw error }
                failures += 1
                logger.warning("store unavailable; retrying", metadata: ["worker": "\(worker)", "error": "\(error)"])
                await stop.sleep(for: RetryPolicy.halfJitter(step: failures, base: .milliseconds(100), cap: .seconds(10)))
                continue
            }
            guard let summary else {
                if idle == .finish { break }
                // Nothing pending: one worker keeps looking, the rest wait for it to find work.
                if watching || idleWatch.becomeWatcher() {
                    watching = true
                    await stop.sleep(for: .milliseconds(configuration.pollIntervalMs))
                } else {
                    await idleWatch.waitForWork(stop: stop)
                }
                continue
            }
            stopWatching()
            total.add(summary)
            activity.finished(summary)
            onBatch(summary)
            if configuration.batchDelayMs > 0 {
                await stop.sleep(for: .milliseconds(configuration.batchDelayMs))
            }
        }
        return total
    }

    /// Releases this instance's leases on repos it is not working on; returns how many.
    @discardableResult
    private func releaseOrphans() async throws -> Int {
        let released = try await store.releaseAll(owner: instanceID, except: inFlight.withLock { $0 })
        if released > 0 { logger.info("released claims orphaned by a store outage", metadata: ["count": "\(released)"]) }
        return released
    }

    // MARK: One batch

    /// Claims one batch and processes it; `nil` when nothing is pending (or, when `paced`, when
    /// only repos another model embedded are, and their pace is spent for now).
    public func processNextBatch(paced: Bool = false) async throws -> PipelineSummary? {
        let claimed = try await claimNext(paced: paced)
        guard !claimed.isEmpty else { return nil }
        return try await processClaimed(claimed)
    }

    /// One claim. The pace is taken before it and the unused part given back right after, so
    /// workers claiming at the same moment never re-embed more than the pace between them.
    private func claimNext(paced: Bool) async throws -> [ClaimedRepo] {
        let clock = protection.clock
        let batchSize = configuration.batchSize
        let staleLimit = paced ? stalePace.withLock { $0.take(upTo: batchSize, now: clock.now()) } : nil
        var stale = 0  // what the claim used of it (none if it failed)
        defer { if let staleLimit { stalePace.withLock { $0.refund(staleLimit - stale) } } }
        let claimed = try await metrics.timed("claim") {
            try await store.claimPending(ClaimRequest(
                owner: instanceID, limit: batchSize,
                leaseDuration: .seconds(configuration.leaseSeconds), model: modelIdentity,
                staleLimit: staleLimit, liveness: .seconds(max(120, 2 * configuration.leaseSeconds))))
        }
        stale = claimed.filter(\.stale).count
        return claimed
    }

    private func track(_ ids: [RepoID], working: Bool) {
        inFlight.withLock { set in
            if working { set.formUnion(ids) } else { set.subtract(ids) }
        }
    }

    /// Processes repos this instance has claimed; what is not written is released on error.
    public func processClaimed(_ claimed: [ClaimedRepo]) async throws -> PipelineSummary {
        let ids = claimed.map(\.repo.id)
        track(ids, working: true)
        activity.busy(1)
        let renewal = renewLeases(ids)
        defer {
            renewal.cancel()
            track(ids, working: false)
            activity.busy(-1)
        }
        do {
            return try await process(claimed)
        } catch {
            // Whatever was not written goes back to the queue now rather than at lease expiry
            // (if the store is down, the release after the outage does it).
            await releaseOutsideCancellation(ids)
            throw error
        }
    }

    /// Keeps the leases on a batch in flight alive: renewed every third of `lease_seconds`, so a
    /// slow provider or a long rate-limit wait never lets another instance claim the batch too.
    /// A lease lost anyway (the store was unreachable for longer) makes the write refused.
    private func renewLeases(_ ids: [RepoID]) -> Task<Void, Never> {
        let store = self.store, owner = instanceID, logger = self.logger
        let lease = Duration.seconds(configuration.leaseSeconds)
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: lease / 3)
                if Task.isCancelled { return }
                do {
                    let held = try await store.renew(ids, owner: owner, leaseDuration: lease)
                    if held.count < ids.count {
                        logger.warning("leases of a batch in flight were lost; their writes will be refused", metadata: [
                            "lost": "\(ids.count - held.count)",
                        ])
                    }
                } catch {
                    logger.debug("lease renewal failed; trying again", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The wait after a 429 that named none: 0.5-1 s, doubling with each 429 in a row (with
    /// jitter, so workers do not come back together), at most about a minute.
    public static func rateLimitBackoff(afterRateLimits count: Int) -> Duration {
        RetryPolicy.halfJitter(step: count, base: .seconds(1), cap: .seconds(64))
    }

    /// Ends this instance's leases on `ids` even when the calling task was cancelled (the
    /// shutdown deadline passed): stores refuse work in a cancelled task, so the release runs in
    /// a task of its own, bounded by `timeout`.
    func releaseOutsideCancellation(_ ids: [RepoID], timeout: Duration = .seconds(5)) async {
        let store = self.store, owner = instanceID, logger = self.logger
        await Task.detached {
            let released = await withTaskGroup(of: Bool?.self) { group -> Bool in
                group.addTask {
                    do {
                        try await store.release(ids, owner: owner)
                        return true
                    } catch {
                        logger.warning("could not release claims; they are claimed again when their leases expire", metadata: [
                            "count": "\(ids.count)", "error": "\(error)",
                        ])
                        return false
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first ?? false
            }
            if !released {
                logger.debug("release of unfinished claims did not complete", metadata: ["count": "\(ids.count)"])
            }
        }.value
    }

    private struct Work {
        var claim: ClaimedRepo
        var text: String
        var hash: String
    }

    func process(_ claimed: [ClaimedRepo]) async throws -> PipelineSummary {
        let started = ContinuousClock.now
        var log = logger
        log[metadataKey: "batch"] = "\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        var summary = PipelineSummary()
        summary.claimed = claimed.count
        var writes: [RepoWrite] = []
        var failures: [RepoFailure] = []
        var released: [RepoID] = []
        var work: [Work] = []
        for claim in claimed {
            let text = document.text(for: claim.repo, tokenCount: provider.tokenCount)
            let hash = document.hash(text)
            if hash == claim.embeddedHash {
                writes.append(RepoWrite(id: claim.repo.id, revision: claim.revision, model: modelIdentity, change: .unchanged(contentHash: hash)))
            } else if text.isEmpty {
                failures.append(failure(claim, "the text template gives an empty text", permanent: true))
            } else {
                work.append(Work(claim: claim, text: text, hash: hash))
            }
        }

        // The same text is embedded once per batch, whichever repos share it; a text the cache
        // holds (same hash: same provider, model, dimensions, prefixes and text) not at all.
        var uniqueTexts: [String] = []
        var uniqueHashes: [String] = []
        var slotOfHash: [String: Int] = [:]
        for item in work where slotOfHash[item.hash] == nil {
            slotOfHash[item.hash] = uniqueTexts.count
            uniqueTexts.append(item.text)
            uniqueHashes.append(item.hash)
        }

        var found = [Result<[Float], ItemProblem>?](repeating: nil, count: uniqueTexts.count)
        var missing: [Int] = []
        for slot in uniqueTexts.indices {
            if let vector = protection.cache?.get(uniqueHashes[slot]) {
                found[slot] = .success(vector)
                summary.cacheHits += 1
            } else {
                missing.append(slot)
            }
        }
        metrics.cache(hits: uniqueTexts.count - missing.count, misses: protection.cache == nil ? 0 : missing.count)
        let costs = missing.map { provider.tokenCount(uniqueTexts[$0]) }
        let maxCount = max(1, min(configuration.batchSize, model.maxBatchSize))
        let maxTokens = [configuration.maxBatchTokens, model.maxBatchTokens].compactMap { $0 }.min()
        for range in Batcher.split(costs: costs, maxCount: maxCount, maxTokens: maxTokens) {
            let slots = Array(missing[range])
            let answers = try await embedIsolating(slots.map { uniqueTexts[$0] }, summary: &summary, log: log)
            for (slot, answer) in zip(slots, answers) {
                found[slot] = answer
                if case .success(let vector) = answer { protection.cache?.put(uniqueHashes[slot], vector) }
            }
        }
        let results = found.map { $0! }  // every slot was answered: from the cache or by a call

        let now = Date()
        for item in work {
            switch results[slotOfHash[item.hash]!] {  // every hash got a slot above
            case .success(let vector):
                writes.append(RepoWrite(id: item.claim.repo.id, revision: item.claim.revision, model: modelIdentity,
                                        change: .embedded(vector: vector, contentHash: item.hash, generatedAt: now)))
            case .failure(let problem) where problem.release:
                released.append(item.claim.repo.id)
            case .failure(let problem):
                failures.append(failure(item.claim, problem.reason, permanent: problem.permanent))
            }
        }

        if !writes.isEmpty {
            let outcomes = try await metrics.timed("write") { try await store.write(writes, owner: instanceID) }
            for write in writes {
                let outcome = outcomes[write.id] ?? .notFound
                log.debug("repo written", metadata: ["repo": "\(write.id)", "outcome": "\(outcome.rawValue)",
                                                     "change": "\(write.change.isEmbedding ? "embedded" : "unchanged")"])
                switch outcome {
                case .applied:
                    if case .unchanged = write.change { summary.unchanged += 1 } else { summary.embedded += 1 }
                case .changedSinceClaim, .leaseLost:
                    summary.conflicts += 1
                case .notFound:
                    break
                }
            }
        }
        if !failures.isEmpty {
            log.warning("repos could not be embedded this time", metadata: [
                "count": "\(failures.count)", "first_reason": "\(failures[0].reason)",
            ])
            let outcomes = try await metrics.timed("failures") {
                try await store.recordFailures(failures, owner: instanceID, maxAttempts: configuration.maxAttempts)
            }
            for (id, outcome) in outcomes {
                switch outcome {
                case .failed(let attempts):
                    summary.failed += 1
                    log.warning("repo failed for good", metadata: ["repo": "\(id)", "attempts": "\(attempts)"])
                case .willRetry(let attempts):
                    summary.retrying += 1
                    log.debug("repo will be retried", metadata: ["repo": "\(id)", "attempts": "\(attempts)"])
                }
            }
        }
        if !released.isEmpty {
            try await store.release(released, owner: instanceID)
            summary.released += released.count
        }
        metrics.record(summary)
        log.info("batch done", metadata: [
            "claimed": "\(summary.claimed)", "embedded": "\(summary.embedded)", "unchanged": "\(summary.unchanged)",
            "failed": "\(summary.failed)", "retrying": "\(summary.retrying)", "conflicts": "\(summary.conflicts)",
            "released": "\(summary.released)", "provider_calls": "\(summary.providerCalls)",
            "ms": "\(Int((ContinuousClock.now - started).nanoseconds / 1_000_000))",
        ])
        return summary
    }

    private func failure(_ claim: ClaimedRepo, _ reason: String, permanent: Bool) -> RepoFailure {
        let exponent = min(claim.attempts, 10)
        let delay = Duration.milliseconds(configuration.retryDelayMs) * (1 << exponent)
        return RepoFailure(id: claim.repo.id, reason: reason, permanent: permanent, retryAfter: delay)
    }

    // MARK: Provider calls

    struct ItemProblem: Error {
        var reason: String
        var permanent: Bool
        /// Not the item's fault (the provider asked us to slow down): back to the queue, no attempt counted.
        var release = false
    }

    /// Embeds `texts`, isolating inputs the provider rejects so the rest of the batch is embedded.
    /// Throws only for run-fatal errors and cancellation.
    private func embedIsolating(_ texts: [String], summary: inout PipelineSummary, log: Logger) async throws -> [Result<[Float], ItemProblem>] {
        do {
            let vectors = try await embedWithRetry(texts, summary: &summary, log: log)
            guard vectors.count == texts.count else {
                metrics.error("wrong_count")
                let problem = ItemProblem(reason: "provider returned \(vectors.count) vectors for \(texts.count) texts", permanent: false)
                return Array(repeating: .failure(problem), count: texts.count)
            }
            try checkDimensionsOfTheBatch(vectors)
            return vectors.map(check)
        } catch let error as EmbeddingError {
            metrics.error(error.label)
            switch error.kind {
            case .fatal:
                throw error
            case .invalidInput(let indices?) where !indices.isEmpty && indices.allSatisfy(texts.indices.contains) && indices.count < texts.count:
                let bad = Set(indices)
                let rest = texts.indices.filter { !bad.contains($0) }
                let restResults = try await embedIsolating(rest.map { texts[$0] }, summary: &summary, log: log)
                var results = Array(repeating: Result<[Float], ItemProblem>.failure(ItemProblem(reason: "rejected by the provider: \(error.message)", permanent: false)), count: texts.count)
                for (position, index) in rest.enumerated() { results[index] = restResults[position] }
                return results
            case .invalidInput:
                if texts.count == 1 {
                    return [.failure(ItemProblem(reason: "rejected by the provider: \(error.message)", permanent: false))]
                }
                let middle = texts.count / 2
                let left = try await embedIsolating(Array(texts[..<middle]), summary: &summary, log: log)
                return left + (try await embedIsolating(Array(texts[middle...]), summary: &summary, log: log))
            case .rateLimited:
                return Array(repeating: .failure(ItemProblem(reason: error.description, permanent: false, release: true)), count: texts.count)
            case .retryable:
                return Array(repeating: .failure(ItemProblem(reason: error.description, permanent: false)), count: texts.count)
            }
        } catch let error as CircuitOpenError {
            // Not the repos' fault: they go back to the queue without an attempt.
            return Array(repeating: .failure(ItemProblem(reason: error.description, permanent: false, release: true)), count: texts.count)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            metrics.error("other")
            return Array(repeating: .failure(ItemProblem(reason: "provider error: \(error)", permanent: false)), count: texts.count)
        }
    }

    /// A whole answer of vectors of one other size is the provider's or the configuration's
    /// fault (a backend that ignores the requested `dimensions`, a model swapped behind the same
    /// name), not the repos': the run stops with one message and no repo is marked failed.
    private func checkDimensionsOfTheBatch(_ vectors: [[Float]]) throws {
        guard let size = vectors.first?.count, vectors.allSatisfy({ $0.count == size }),
              let expected = learnedDimensions.withLock({ $0 }), size != expected else { return }
        metrics.error("invalid_vector")
        throw EmbeddingError(.fatal, """
            the provider answered \(vectors.count) vector\(vectors.count == 1 ? "" : "s") of \(size) dimensions, but the model \
            \(modelIdentity) makes \(expected): the backend ignores the configured dimensions, or another model answers under \
            this name. Set the provider's `dimensions` to what the backend makes (a model change), or fix the backend. \
            No repo was marked failed
            """)
    }

    private func check(_ vector: [Float]) -> Result<[Float], ItemProblem> {
        let expected = learnedDimensions.withLock { learned -> Int in
            if learned == nil { learned = vector.count }
            return learned!  // set on the line above when it was nil
        }
        if let problem = protection.validator.problem(with: vector, expectedDimensions: expected) {
            metrics.error("invalid_vector")
            return .failure(ItemProblem(reason: "invalid vector from the provider: \(problem)", permanent: false))
        }
        return .success(vector)
    }

    /// One provider call with its protection: the circuit must be closed (or this the half-open
    /// probe), the rate limiter must allow it, transient faults are retried with exponential
    /// backoff and full jitter within the retry policy's attempts and deadline, and a
    /// `retry-after` is honoured exactly (no call before it is up) without counting as a failure.
    /// Repo-level retries with longer delays happen through the store's attempt count.
    private func embedWithRetry(_ texts: [String], summary: inout PipelineSummary, log: Logger) async throws -> [[Float]] {
        let clock = protection.clock
        let breaker = protection.breaker
        let began = clock.now()
        let cost = texts.reduce(0) { $0 + provider.tokenCount($1) }
        var failures = 0
        var rateLimited = 0
        var random = SystemRandomNumberGenerator()
        while true {
            let (permit, openings) = breaker.permitted()
            if case .rejected(let retryIn) = permit { throw CircuitOpenError(retryIn: retryIn) }
            do {
                try await protection.limiter.acquire(cost: cost)
            } catch {
                breaker.recordNeutral()
                throw error
            }
            summary.providerCalls += 1
            summary.textsSent += texts.count
            let started = ContinuousClock.now
            let failure: any Error
            do {
                let vectors = try await provider.embed(texts, mode: .document)
                metrics.request("ok", duration: ContinuousClock.now - started)
                breaker.recordSuccess()
                return vectors
            } catch let error as EmbeddingError {
                metrics.request(error.label, duration: ContinuousClock.now - started)
                switch error.kind {
                case .rateLimited(let retryAfter):
                    // Not a failure of the items nor of the circuit: wait exactly as asked.
                    breaker.recordNeutral()
                    metrics.rateLimited()
                    let wait = retryAfter ?? Self.rateLimitBackoff(afterRateLimits: rateLimited)
                    protection.limiter.pause(for: wait)
                    rateLimited += 1
                    // Past the policy's attempts or deadline the repos go back to the queue
                    // (no attempt counted); the pause still holds every worker's next call.
                    guard rateLimited < protection.retry.maxAttempts, protection.retry.allows(wait: wait, elapsed: clock.now() - began) else {
                        throw error
                    }
                    log.debug("provider asked to slow down; waiting", metadata: ["retry_after_ms": "\(wait.nanoseconds / 1_000_000)"])
                    continue
                case .invalidInput:
                    breaker.recordSuccess()  // the provider answered; the input is the problem
                    throw error
                case .fatal:
                    breaker.recordNeutral()
                    throw error
                case .retryable:
                    failure = error
                }
            } catch is CancellationError {
                breaker.recordNeutral()
                throw CancellationError()
            } catch {
                metrics.request("other", duration: ContinuousClock.now - started)
                failure = error
            }
            breaker.recordFailure(permittedIn: openings)
            failures += 1
            guard let wait = protection.retry.delay(afterAttempt: failures, elapsed: clock.now() - began, using: &random) else { throw failure }
            log.debug("provider call failed; retrying", metadata: ["error": "\(failure)", "attempt": "\(failures)", "wait_ms": "\(wait.nanoseconds / 1_000_000)"])
            try await clock.sleep(for: wait)
        }
    }
}

/// The pipeline's metrics, created once per pipeline (swift-metrics caches by label and dimensions).
private struct PipelineMetrics: Sendable {
    let provider: String
    let model: String
    let embeddings: Counter
    let unchanged: Counter
    let conflicts: Counter
    let rateLimits: Counter
    let cacheHits: Counter
    let cacheMisses: Counter
    let batchSize: Recorder
    let duration: Metrics.Timer

    init(provider: String, model: String) {
        self.provider = provider
        self.model = model
        let dimensions = [("provider", provider), ("model", model)]
        embeddings = Counter(label: MetricNames.embeddings, dimensions: dimensions)
        unchanged = Counter(label: MetricNames.unchanged, dimensions: dimensions)
        conflicts = Counter(label: MetricNames.writeConflicts, dimensions: [("provider", provider)])
        rateLimits = Counter(label: MetricNames.rateLimits, dimensions: [("provider", provider)])
        cacheHits = Counter(label: MetricNames.cacheHits, dimensions: [("provider", provider)])
        cacheMisses = Counter(label: MetricNames.cacheMisses, dimensions: [("provider", provider)])
        batchSize = Recorder(label: MetricNames.batchSize, dimensions: [("provider", provider)])
        duration = Metrics.Timer(label: MetricNames.embeddingDuration, dimensions: dimensions, preferredDisplayUnit: .seconds)
        // Every error series exists from the start, so rate() alerts see a zero, not a gap.
        for kind in Self.errorKinds {
            Counter(label: MetricNames.embeddingErrors, dimensions: [("provider", provider), ("kind", kind)]).increment(by: 0)
        }
    }

    func record(_ summary: PipelineSummary) {
        embeddings.increment(by: summary.embedded)
        unchanged.increment(by: summary.unchanged)
        conflicts.increment(by: summary.conflicts)
        batchSize.record(summary.claimed)
    }

    static let errorKinds = ["retryable", "rate_limited", "invalid_input", "fatal", "invalid_vector", "wrong_count", "other"]

    func error(_ kind: String) {
        Counter(label: MetricNames.embeddingErrors, dimensions: [("provider", provider), ("kind", kind)]).increment()
    }

    func request(_ outcome: String, duration elapsed: Duration) {
        Counter(label: MetricNames.providerRequests, dimensions: [("provider", provider), ("outcome", outcome)]).increment()
        if outcome == "ok" { duration.recordNanoseconds(elapsed.nanoseconds) }
    }

    func rateLimited() { rateLimits.increment() }

    func cache(hits: Int, misses: Int) {
        if hits > 0 { cacheHits.increment(by: hits) }
        if misses > 0 { cacheMisses.increment(by: misses) }
    }

    /// Times a store call (`embed_star_store_query_duration_seconds{operation}`); failures count
    /// in `embed_star_store_errors_total{operation}`.
    func timed<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        do {
            let value = try await body()
            Metrics.Timer(label: MetricNames.storeQueryDuration, dimensions: [("operation", operation)], preferredDisplayUnit: .seconds)
                .recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            return value
        } catch {
            Counter(label: MetricNames.storeErrors, dimensions: [("operation", operation)]).increment()
            throw error
        }
    }
}
