import Foundation

/// Settings of `backfill --batch-api` (``Pipeline/batchBackfill(_:stop:onJob:)``).
public struct BatchAPISettings: Sendable, Hashable {
    /// Requests (distinct texts) per batch at most (OpenAI takes 50,000).
    public var linesPerBatch = 10_000
    /// Batches waited for at once at most.
    public var jobsInFlight = 4
    /// The first wait between two looks at the batches, doubled after each look up to
    /// ``pollUpTo``.
    public var pollFrom: Duration = .seconds(2)
    public var pollUpTo: Duration = .seconds(60)
    /// How long the job's repos stay leased: the provider's completion window (24 hours) and an
    /// hour, renewed every hour while the job waits.
    public var lease: Duration = .seconds(25 * 3600)
    public var renewEvery: Duration = .seconds(3600)
    /// After a batch the provider ended without completing, the next submission waits this long,
    /// doubled for each one more in a row up to ``endedBackoffCap``; after ``endedInARowLimit``
    /// in a row the run stops with an error (the repos stay pending).
    public var endedBackoff: Duration = .seconds(30)
    /// One `backfill --batch-api` per database at a time: a second waits until the first has not
    /// said it runs for this long.
    public var exclusiveFor: Duration = .seconds(20)
    public var endedBackoffCap: Duration = .seconds(900)
    public var endedInARowLimit = 5
    /// Looks at a job that fail in a row before it is given up (its repos count a failed attempt).
    public var looksBeforeGivingUp = 10

    public init() {}
}

/// What happened to one batch job (the log and `backfill`'s progress).
public struct BatchJobEvent: Sendable {
    public enum Kind: Sendable { case submitted, resumed, written, ended }
    public var kind: Kind
    public var job: BatchJob
    public var summary: PipelineSummary
    public var detail: String?

    public init(kind: Kind, job: BatchJob, summary: PipelineSummary, detail: String? = nil) {
        self.kind = kind
        self.job = job
        self.summary = summary
        self.detail = detail
    }
}

/// Another `backfill --batch-api` runs on this database.
public struct BatchAPIBusy: Error, CustomStringConvertible {
    public var description: String {
        "another `backfill --batch-api` is running on this database (one at a time: both would take up the same jobs)"
    }
}

/// The provider ended too many batches in a row without completing them.
public struct BatchAPIGaveUp: Error, CustomStringConvertible {
    public var ended: Int
    public var lastReason: String
    public var description: String {
        "the provider ended \(ended) batches in a row without completing them (the last: \(lastReason)); their repos are pending again"
    }
}

/// The provider of this pipeline has no batch API.
public struct BatchAPIUnsupported: Error, CustomStringConvertible {
    public var provider: String

    public init(provider: String) { self.provider = provider }

    public var description: String {
        "the \(provider) provider has no batch API: `backfill --batch-api` needs one that has (openai)"
    }
}

/// `backfill --batch-api`: the pending repos embedded through the provider's batch API
/// (``BatchEmbeddingProvider``), at its lower price, instead of one call per batch.
///
/// - Claim up to ``BatchAPISettings/linesPerBatch`` pending repos under a lease of the job's own
///   owner (`batch-…`, not the instance's: a restarted backfill takes the job over under it),
///   leased for the provider's completion window; their texts are built and hashed as the
///   pipeline does (an unchanged text is confirmed at once, an empty one fails).
/// - Save the job in the store (``RepoStore/saveBatchJob(_:)``) before the claim (its owner),
///   again with its items before the provider sees it, submit the texts tagged with the job's
///   id, save the batch id: a process killed at any point leaves a job a later
///   `backfill --batch-api` finds, waits for and writes. A job without a batch id is looked up
///   at the provider by its tag (killed after the provider accepted it); found nowhere, its
///   owner's leases are released and the repos go back to the queue.
/// - Look at the batches with backoff, renewing the leases every hour; when one completes,
///   write its vectors through the same conditional writes as every vector (a repo whose text
///   changed or whose lease was lost meanwhile is not written), record the failed lines as
///   failures (an attempt counted, the reason kept), release repos with no answer; when one
///   ends without completing (failed, expired, cancelled), write what it answered and release
///   the rest, and wait longer before the next submission (5 ended in a row stop the run).
/// - A job of another model identity (the configuration changed since) is dropped and its
///   repos released; a job that cannot be looked at 5 times in a row is given up the same way.
/// Returns when nothing is claimable and every job is done with (repos waiting out a retry stay
/// pending, as in `backfill`), then does the store's idle work; or when `stop` triggers (jobs in
/// flight stay in the store for the next run).
extension Pipeline {
    public func batchBackfill(_ settings: BatchAPISettings = BatchAPISettings(), stop: StopSignal = StopSignal(),
                              onJob: @escaping @Sendable (BatchJobEvent) -> Void = { _ in }) async throws -> PipelineSummary {
        guard let batch = provider.base as? BatchEmbeddingProvider else { throw BatchAPIUnsupported(provider: providerName) }
        // This call's own name in the turn (two processes of one configuration share an
        // instance id).
        let turn = "\(instanceID)-\(UUID().uuidString.prefix(8).lowercased())"
        try await takeBatchTurn(turn, settings, stop: stop)
        let heartbeat = Task { [store, logger] in
            var lastHeard = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.exclusiveFor / 4)
                if Task.isCancelled { break }
                do {
                    let share = try await store.shareRateLimit(Self.batchTurn(turn, active: true, settings))
                    lastHeard = .now
                    if share.others > 0 {
                        logger.error("another backfill --batch-api took this database's turn; stopping between looks")
                        stop.trigger()
                    }
                } catch {
                    if ContinuousClock.now - lastHeard >= settings.exclusiveFor {
                        logger.error("could not keep this backfill --batch-api's turn in the store; stopping between looks", metadata: ["error": "\(error)"])
                        stop.trigger()
                    }
                }
            }
        }
        let result: Result<PipelineSummary, any Error>
        do {
            result = .success(try await batchRounds(batch, settings, stop: stop, onJob: onJob))
        } catch {
            result = .failure(error)
        }
        heartbeat.cancel()
        await heartbeat.value
        _ = try? await store.shareRateLimit(Self.batchTurn(turn, active: false, settings))
        return try result.get()
    }

    /// The turn of one `backfill --batch-api` at a time, kept in the store as the instances'
    /// shared rate limits are (``RepoStore/shareRateLimit(_:)``, account `embed-star/batch-api`):
    /// this process counts as active while it runs (renewed every quarter of
    /// ``BatchAPISettings/exclusiveFor``); another one that starts meanwhile waits until this one
    /// has not reported for that long (a killed one), then goes on, or stops with an error.
    static func batchTurn(_ owner: String, active: Bool, _ settings: BatchAPISettings) -> RateLimitReport {
        RateLimitReport(account: "embed-star/batch-api", owner: owner, active: active, activeFor: settings.exclusiveFor)
    }

    /// Waits (not counted as a user itself, so waiters do not hold each other up) until no other
    /// `backfill --batch-api` says it runs, then counts itself in. Two that start at the same
    /// moment can both go on (the check and the report are two steps); the one that notices
    /// the other at its next heartbeat stops.
    private func takeBatchTurn(_ turn: String, _ settings: BatchAPISettings, stop: StopSignal) async throws {
        let started = ContinuousClock.now
        var told = false
        while try await store.shareRateLimit(Self.batchTurn(turn, active: false, settings)).others > 0 {
            if stop.isStopped { throw CancellationError() }
            guard ContinuousClock.now - started < settings.exclusiveFor + .seconds(5) else { throw BatchAPIBusy() }
            if !told {
                logger.notice("another backfill --batch-api uses this database; waiting for it to end (or, killed, to time out)", metadata: [
                    "seconds": "\(settings.exclusiveFor.seconds)",
                ])
                told = true
            }
            await stop.sleep(for: .seconds(1))
        }
        _ = try await store.shareRateLimit(Self.batchTurn(turn, active: true, settings))
    }

    private func batchRounds(_ batch: any BatchEmbeddingProvider, _ settings: BatchAPISettings, stop: StopSignal,
                             onJob: @escaping @Sendable (BatchJobEvent) -> Void) async throws -> PipelineSummary {
        var total = PipelineSummary()
        var jobs: [BatchJob] = []
        for job in try await store.batchJobs() {
            guard job.modelIdentity == modelIdentity else {
                // Made for another model identity (the template, prefixes or dimensions changed
                // since): its answers would not be this model's. Its repos go back to the queue.
                logger.warning("a batch job of another model identity is dropped; its repos go back to the queue", metadata: [
                    "job": "\(job.id)", "batch": "\(job.batchID ?? "none")", "model": "\(job.modelIdentity)",
                ])
                _ = try await store.releaseAll(owner: job.owner, except: [])
                try await store.removeBatchJob(job.id)
                continue
            }
            jobs.append(job)
            logger.notice("resuming a batch job", metadata: ["job": "\(job.id)", "batch": "\(job.batchID ?? "none")", "repos": "\(job.items.count)"])
            onJob(BatchJobEvent(kind: .resumed, job: job, summary: PipelineSummary()))
        }
        var renewed: [String: ContinuousClock.Instant] = [:]  // none yet: a resumed job's leases are renewed at its first look
        var failedLooks: [String: Int] = [:]
        var drained = false
        var wait = settings.pollFrom
        // Batches the provider ended without completing, in a row: each makes the next
        // submission wait longer (a full queue at the provider ends new batches at once).
        var endedInARow = 0
        var submitAfter = ContinuousClock.now
        var gaveUp: BatchAPIGaveUp?  // then nothing more is submitted; the jobs in flight are seen to
        while !stop.isStopped {
            while !drained, gaveUp == nil, jobs.count < settings.jobsInFlight, !stop.isStopped, ContinuousClock.now >= submitAfter {
                guard let job = try await submitNextJob(batch, settings: settings, total: &total, onJob: onJob) else {
                    drained = true
                    break
                }
                jobs.append(job)
                renewed[job.id] = .now
                wait = settings.pollFrom
            }
            if jobs.isEmpty && (drained || stop.isStopped || gaveUp != nil) { break }
            var remaining: [BatchJob] = []
            for job in jobs {
                if stop.isStopped {
                    remaining.append(job)
                    continue
                }
                let outcome: Look
                do {
                    outcome = try await look(at: job, batch, settings: settings, renewed: &renewed, total: &total, onJob: onJob)
                    failedLooks[job.id] = nil
                } catch is CancellationError {
                    throw CancellationError()
                } catch let error as EmbeddingError where error.kind == .fatal {
                    throw error  // a key or project refused: nothing works until an operator acts; the jobs stay
                } catch {
                    // One job's trouble (an answer that cannot be read, a store or provider
                    // hiccup) does not stop the others: looked at again later. After 10 tries in
                    // a row it is given up and its repos counted a failed attempt each (not put
                    // back as they are: a batch whose answers cannot be read would be bought again
                    // and again); max_attempts then marks them failed.
                    let tries = failedLooks[job.id, default: 0] + 1
                    failedLooks[job.id] = tries
                    logger.error("a batch job could not be looked at", metadata: [
                        "job": "\(job.id)", "batch": "\(job.batchID ?? "none")", "tries": "\(tries)", "error": "\(error)",
                    ])
                    if tries >= settings.looksBeforeGivingUp {
                        let failures = job.items.map {
                            failure($0.repo, revision: $0.revision, attempts: $0.attempts, reason: "its batch could not be read: \(error)", permanent: false)
                        }
                        if !failures.isEmpty {
                            total.count(failures: try await store.recordFailures(failures, owner: job.owner, maxAttempts: configuration.maxAttempts))
                        }
                        _ = try await store.releaseAll(owner: job.owner, except: [])
                        try await store.removeBatchJob(job.id)
                        onJob(BatchJobEvent(kind: .ended, job: job, summary: PipelineSummary(), detail: "given up: \(error)"))
                        drained = false
                    } else {
                        remaining.append(job)
                    }
                    continue
                }
                switch outcome {
                case .waiting:
                    remaining.append(job)
                case .written(let putBack):
                    endedInARow = 0
                    wait = settings.pollFrom  // a slot is free: submit and look again soon
                    if putBack { drained = false }  // repos without an answer, or changed: pending again
                case .putBack(let ended, _):
                    // Its repos are pending again: claimed by a next job, even if a claim found
                    // nothing while they were still leased.
                    drained = false
                    wait = settings.pollFrom
                    if ended {
                        endedInARow += 1
                        let pause = min(settings.endedBackoff * (1 << min(endedInARow - 1, 10)), settings.endedBackoffCap)
                        submitAfter = .now + pause
                        if endedInARow >= settings.endedInARowLimit, gaveUp == nil {
                            gaveUp = BatchAPIGaveUp(ended: endedInARow, lastReason: outcome.reason ?? "")
                        }
                    }
                }
            }
            jobs = remaining
            if jobs.isEmpty && (drained || gaveUp != nil) { break }
            if jobs.count >= settings.jobsInFlight || drained || gaveUp != nil || ContinuousClock.now < submitAfter {
                let until = ContinuousClock.now < submitAfter && jobs.isEmpty ? submitAfter - .now : wait
                await stop.sleep(for: until)
                wait = min(wait * 2, settings.pollUpTo)
            }
        }
        if let gaveUp, !stop.isStopped { throw gaveUp }
        // Ended without an error or a stop: the store's idle work (the vector index, packed codes).
        if !stop.isStopped { await maintainStore() }
        return total
    }

    /// Claims, plans and submits one job; nil when nothing is pending.
    private func submitNextJob(_ batch: any BatchEmbeddingProvider, settings: BatchAPISettings, total: inout PipelineSummary,
                               onJob: @Sendable (BatchJobEvent) -> Void) async throws -> BatchJob? {
        while true {
            // Kept before the claim: a process killed after it leaves a job that names the
            // owner of the leases (released by the next run).
            var job = BatchJob(id: UUID().uuidString.lowercased(), owner: "batch-\(UUID().uuidString.prefix(13).lowercased())",
                               modelIdentity: modelIdentity, items: [], createdAt: Date())
            let owner = job.owner
            try await store.saveBatchJob(job)
            let claimed = try await store.claimPending(ClaimRequest(owner: owner, limit: settings.linesPerBatch, leaseDuration: settings.lease,
                                                                    modelIdentity: modelIdentity))
            if claimed.isEmpty {
                try await store.removeBatchJob(job.id)
                return nil
            }
            total.claimed += claimed.count
            // Planned as `run` plans a batch: texts, hashes, unchanged and empty texts settled,
            // one request per distinct text.
            let plan = BatchPlan(claimed, rules: planRules)
            let (confirmed, refused) = plan.settled
            let requests = plan.texts.indices.map { BatchRequest(id: "t\($0)", text: plan.texts[$0]) }
            let items = plan.slots.map {
                BatchJob.Item(repo: $0.claim.repo.id, revision: $0.claim.revision, hash: $0.hash, request: "t\($0.slot)", attempts: $0.claim.attempts)
            }
            if !confirmed.isEmpty { total.count(confirmed, outcomes: try await store.write(confirmed, owner: owner)) }
            if !refused.isEmpty {
                total.count(failures: try await store.recordFailures(refused, owner: owner, maxAttempts: configuration.maxAttempts))
            }
            if items.isEmpty {
                try await store.removeBatchJob(job.id)
                continue
            }
            job.items = items
            try await store.saveBatchJob(job)
            do {
                job.batchID = try await submit(requests, tag: job.id, to: batch)
            } catch let error as EmbeddingError where error.kind != .fatal {
                // Not accepted, or not known to be: the job stays in flight without a batch id,
                // and its first look finds its batch by its tag, or puts its repos back.
                logger.warning("submitting a batch failed; its job is looked at again", metadata: ["job": "\(job.id)", "error": "\(error)"])
                return job
            }
            try await store.saveBatchJob(job)
            total.providerCalls += 1
            total.textsSent += requests.count
            logger.notice("batch submitted", metadata: [
                "job": "\(job.id)", "batch": "\(job.batchID ?? "")", "repos": "\(items.count)", "texts": "\(requests.count)",
            ])
            onJob(BatchJobEvent(kind: .submitted, job: job, summary: PipelineSummary()))
            return job
        }
    }

    /// Submits with the provider's protection: the breaker and limiter are not in this path (a
    /// batch is one request in its own rate limit), retryable errors are tried again 4 times.
    private func submit(_ requests: [BatchRequest], tag: String, to batch: any BatchEmbeddingProvider) async throws -> String {
        var attempt = 0
        while true {
            do {
                if attempt > 0, let found = try await batch.batch(taggedWith: tag) { return found }  // the last try got through
                return try await batch.submitBatch(requests, tag: tag)
            } catch let error as EmbeddingError where error.isTransient && attempt < 4 {
                attempt += 1
                try await Task.sleep(for: RetryPolicy.halfJitter(step: attempt, base: .seconds(1), cap: .seconds(30)))
            }
        }
    }

    private enum Look {
        case waiting
        /// Completed and written; `putBack`: some of its repos are pending again.
        case written(putBack: Bool)
        /// Its repos are back in the queue; `ended`: the provider ended the batch.
        case putBack(ended: Bool, reason: String? = nil)

        var reason: String? { if case .putBack(_, let reason) = self { reason } else { nil } }
    }

    /// One look at a job: still waiting, written, or its repos put back in the queue (it ended
    /// without completing, or was cut short before its batch).
    private func look(at job: BatchJob, _ batch: any BatchEmbeddingProvider, settings: BatchAPISettings,
                      renewed: inout [String: ContinuousClock.Instant], total: inout PipelineSummary,
                      onJob: @Sendable (BatchJobEvent) -> Void) async throws -> Look {
        var job = job
        let ids = job.items.map(\.repo)
        if job.batchID == nil, !job.items.isEmpty, let found = try await batch.batch(taggedWith: job.id) {
            // Accepted by the provider before the process that submitted it was killed.
            job.batchID = found
            try await store.saveBatchJob(job)
            logger.notice("found the batch of a job cut short after its submission", metadata: ["job": "\(job.id)", "batch": "\(found)"])
        }
        guard let batchID = job.batchID else {
            logger.warning("a batch job was cut short before its batch was submitted; its repos go back to the queue", metadata: ["job": "\(job.id)"])
            _ = try await store.releaseAll(owner: job.owner, except: [])
            try await store.removeBatchJob(job.id)
            onJob(BatchJobEvent(kind: .ended, job: job, summary: PipelineSummary(), detail: "cut short before submission"))
            // Counted as a batch that ended: a submission that keeps failing backs off too.
            return .putBack(ended: true, reason: "not accepted by the provider")
        }
        let state: BatchState
        do {
            state = try await batch.batchState(batchID)
        } catch let error as EmbeddingError where error.isTransient {
            logger.warning("could not look at a batch; looking again later", metadata: ["batch": "\(batchID)", "error": "\(error)"])
            return .waiting
        }
        switch state {
        case .running(let done, let count):
            if renewed[job.id].map({ ContinuousClock.now - $0 >= settings.renewEvery }) ?? true {
                let held = try await store.renew(ids, owner: job.owner, leaseDuration: settings.lease)
                renewed[job.id] = .now
                if held.count < ids.count {
                    logger.warning("some repos of a batch job were leased by others meanwhile; their answers will not be written",
                                   metadata: ["batch": "\(batchID)", "lost": "\(ids.count - held.count)"])
                }
            }
            logger.info("batch in progress", metadata: ["batch": "\(batchID)", "done": "\(done)", "total": "\(count)"])
            return .waiting
        case .ended(let reason):
            // What it answered before it ended (an expired or cancelled batch keeps the requests
            // it completed, paid for) is written; the rest goes back to the queue.
            let answers = try await batch.batchAnswers(batchID)  // none when it has no files; an error: looked at again
            let summary = try await write(job, answers: answers)
            total.add(summary)
            try await store.removeBatchJob(job.id)
            logger.warning("a batch ended without completing; what it answered is written, the rest goes back to the queue", metadata: [
                "batch": "\(batchID)", "reason": "\(reason)", "embedded": "\(summary.embedded)", "released": "\(summary.released)",
            ])
            onJob(BatchJobEvent(kind: .ended, job: job, summary: summary, detail: reason))
            return .putBack(ended: true, reason: reason)
        case .completed:
            let answers = try await batch.batchAnswers(batchID)
            let summary = try await write(job, answers: answers)
            total.add(summary)
            try await store.removeBatchJob(job.id)
            logger.notice("batch written", metadata: [
                "batch": "\(batchID)", "embedded": "\(summary.embedded)", "failed": "\(summary.failed)", "retrying": "\(summary.retrying)",
                "conflicts": "\(summary.conflicts)", "released": "\(summary.released)",
            ])
            onJob(BatchJobEvent(kind: .written, job: job, summary: summary))
            return .written(putBack: summary.released > 0 || summary.conflicts > 0)
        }
    }

    /// Writes a completed job's answers as the pipeline writes a batch's.
    private func write(_ job: BatchJob, answers: [String: Result<[Float], ItemProblem>]) async throws -> PipelineSummary {
        var summary = PipelineSummary()
        var writes: [RepoWrite] = []
        var failures: [RepoFailure] = []
        var released: [RepoID] = []
        let now = Date()
        var checked: [String: Result<[Float], ItemProblem>] = [:]
        for item in job.items {
            let answer: Result<[Float], ItemProblem>?
            if let done = checked[item.request] {
                answer = done
            } else {
                answer = answers[item.request].map { result in result.flatMap { provider.checked($0) } }
                checked[item.request] = answer
            }
            switch answer {
            case .success(let vector)?:
                writes.append(RepoWrite(id: item.repo, revision: item.revision, modelIdentity: job.modelIdentity,
                                        change: .embedded(vector: vector, contentHash: item.hash, generatedAt: now)))
            case .failure(let problem)? where !problem.release:
                failures.append(failure(item.repo, revision: item.revision, attempts: item.attempts, reason: problem.reason, permanent: problem.permanent))
            case .failure?, nil:
                released.append(item.repo)
            }
        }
        for chunk in stride(from: 0, to: writes.count, by: 500).map({ Array(writes[$0..<min($0 + 500, writes.count)]) }) {
            summary.count(chunk, outcomes: try await store.write(chunk, owner: job.owner))
        }
        if !failures.isEmpty {
            summary.count(failures: try await store.recordFailures(failures, owner: job.owner, maxAttempts: configuration.maxAttempts))
        }
        if !released.isEmpty {
            try await store.release(released, owner: job.owner)
            summary.released += released.count
        }
        return summary
    }

    /// A failed item waits as a failed repo of `run` does (``BatchPlan/failure(_:revision:attempts:_:permanent:rules:)``).
    private func failure(_ id: RepoID, revision: String, attempts: Int, reason: String, permanent: Bool) -> RepoFailure {
        BatchPlan.failure(id, revision: revision, attempts: attempts, reason, permanent: permanent, rules: planRules)
    }
}
