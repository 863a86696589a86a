import Foundation

/// The worker loops: where the pipeline waits for work, and does the store's idle work when there
/// is none (``maintainStore()``) (leases are renewed by their own tasks,
/// ``ProtectedProvider`` waits out backoff and the rate limiter inside a call). Each worker claims a batch, hands it to
/// ``Pipeline/embedClaimed(_:)`` and goes again; when nothing is pending, one worker polls and the
/// others wait for it (``IdleWatch``); when the store is down, every worker backs off.
extension Pipeline {
    /// Processes everything pending, then returns. Stops early (finishing batches in flight)
    /// when `stop` triggers.
    public func backfill(stop: StopSignal = StopSignal(), onBatch: @escaping @Sendable (PipelineSummary) -> Void = { _ in }) async throws -> PipelineSummary {
        try await sharingRateLimits { try await backfillRounds(stop: stop, onBatch: onBatch) }
    }

    private func backfillRounds(stop: StopSignal, onBatch: @escaping @Sendable (PipelineSummary) -> Void) async throws -> PipelineSummary {
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
            let stats = try await store.stats(modelIdentity: modelIdentity)
            if stats.pending == 0 { break }
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
        // However it ends (the queue dry, repos left waiting out a retry, others' leases given
        // up on), unless stopped: the store's idle work (its search index, packed codes).
        if !stop.isStopped { await maintainStore() }
        return total
    }

    /// Keeps embedding as repos become pending, polling when idle, until `stop` triggers.
    public func run(stop: StopSignal, onBatch: @escaping @Sendable (PipelineSummary) -> Void = { _ in }) async throws -> PipelineSummary {
        try await sharingRateLimits { try await workers(stop: stop, idle: .poll, onBatch: onBatch) }
    }

    /// Runs `body` while the provider account's limits are shared with the other instances
    /// (``FleetRateLimit``): joined before the first request, left when `body` ends.
    private func sharingRateLimits<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard let fleet = fleetRateLimit else { return try await body() }
        let limiter = provider.limiter
        let store = self.store
        do {
            try await fleet.join(limiter, store: store)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.warning("could not share the provider's rate limits through the store; starting alone", metadata: ["error": "\(error)"])
        }
        let sharing = Task { [logger, providerName] in await fleet.run(limiter, store: store, provider: providerName, logger: logger) }
        defer { sharing.cancel() }
        do {
            let value = try await body()
            sharing.cancel()
            await sharing.value
            return value
        } catch {
            sharing.cancel()
            await sharing.value
            throw error
        }
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
            if let open = provider.callsPausedFor, open > .zero {
                // No provider calls while the circuit is open, and no claims that would only be
                // handed back: wait for the half-open probe.
                await stop.sleep(for: min(open, .milliseconds(configuration.pollIntervalMs)))
                continue
            }
            let summary: PipelineSummary?
            do {
                if failures > 0 { try await releaseOrphans() }
                summary = try await embedNextBatch(paced: idle == .poll)
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
                // Nothing pending: one worker keeps looking, the rest wait for it to find work;
                // the one looking does the store's idle work between looks.
                if watching || idleWatch.becomeWatcher() {
                    watching = true
                    await maintainStore()
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

    /// The store's idle work (``RepoStore/maintain(owner:modelIdentity:)``), timed; a failure is logged
    /// and tried again the next time the queue is dry.
    func maintainStore() async {
        let store = self.store
        // It may take a while (an index built and checked, a large pack): the worker is alive.
        let beat = heartbeatWhile()
        defer { beat.cancel() }
        do {
            try await metrics.timed("maintain") { try await store.maintain(owner: self.instanceID, modelIdentity: self.modelIdentity) }
        } catch is CancellationError {
        } catch {
            logger.warning("store maintenance failed; tried again when the queue is next dry", metadata: ["error": "\(error)"])
        }
    }

    /// Releases this instance's leases on repos it is not working on; returns how many.
    @discardableResult
    func releaseOrphans() async throws -> Int {
        // Under the gate: no claim of this process is between the store and its worker.
        let released = try await claimGate.release { try await self.store.releaseAll(owner: self.instanceID, except: self.inFlight.withLock { $0 }) }
        if released > 0 { logger.info("released claims orphaned by a store outage", metadata: ["count": "\(released)"]) }
        return released
    }
}
