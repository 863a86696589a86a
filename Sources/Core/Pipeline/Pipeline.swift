import Foundation
import Logging
import Synchronization

/// claim -> plan (text, hash, unchanged, cache) -> protected provider -> conditional write.
///
/// Workers share the store's queue, the cache and the provider's protection (one breaker and one
/// limiter for the process); each claims its own batch under a lease, so several workers (and
/// several instances) never embed the same repo twice. The data path, in order:
/// ``embedNextBatch(paced:)`` claims, ``embedClaimed(_:)`` keeps the leases, ``BatchPlan``
/// decides, ``ProtectedProvider/embedEach(_:tokens:mode:)`` embeds, the store writes. The loops that
/// drive it are in `Pipeline+Workers.swift`.
public final class Pipeline: Sendable {
    /// The provider behind its breaker, limiter, retries and vector checks.
    public let provider: ProtectedProvider
    public let store: any RepoStore
    public let providerName: String
    public let configuration: PipelineConfiguration
    public let instanceID: String
    /// The model as learned at start.
    public let model: ModelInfo
    /// Names the model that makes this run's vectors (``ModelIdentity``).
    public let modelIdentity: String
    /// How this pipeline builds, prefixes and hashes each repo's text (``modelIdentity`` included).
    public let document: DocumentText
    /// What goes before each document text (part of the hashed text).
    public let prefixes: TaskPrefixes
    /// Vectors by content hash; nil when `resilience.cache.max_bytes` is 0.
    public let cache: EmbeddingCache?
    let logger: Logger
    let metrics: PipelineMetrics
    /// Liveness and progress, for the monitoring server.
    public let activity: PipelineActivity
    /// Repos this process is working on now. After a store outage every other lease of this
    /// instance is an orphan (a claim whose answer was lost, a release that failed) and is
    /// released, so no repo stays leased until its lease runs out.
    let inFlight = Mutex<Set<RepoID>>([])
    /// Claims and the release of orphaned leases never overlap (``ClaimGate``).
    let claimGate = ClaimGate()
    /// The pace of re-embedding repos another model embedded (`pipeline.reembed_per_minute`).
    private let stalePace: Mutex<RateLimitBudget>
    /// One idle worker looks for work; the others wait for it (``IdleWatch``).
    let idleWatch = IdleWatch()
    /// How the provider account's limits are shared with the other instances of the store (nil:
    /// `resilience.rate_limit.shared` is false).
    public let fleetRateLimit: FleetRateLimit?

    /// Prepares the store and the provider (learning the model), then returns a pipeline ready to run.
    ///
    /// - Parameters:
    ///   - provider: a ``ProtectedProvider`` (what the runtime builds from `resilience:`), or any
    ///     provider, which is then protected with the default resilience settings.
    ///   - cache: vectors by content hash, shared by whoever should share hits.
    ///   - activity: where the workers report liveness and progress (the monitoring server reads it).
    public static func start(
        provider: any EmbeddingProvider,
        providerName: String,
        store: any RepoStore,
        configuration: PipelineConfiguration,
        text: TextConfiguration = TextConfiguration(),
        cache: EmbeddingCache? = ResilienceConfiguration.Cache().make(),
        rateLimit: ResilienceConfiguration.RateLimit = ResilienceConfiguration.RateLimit(),
        activity: PipelineActivity = PipelineActivity(),
        instanceID: String,
        logger: Logger
    ) async throws -> Pipeline {
        // A provider already protected must come in typed as one (the other overload): wrapped
        // again it would have two breakers and two retry layers.
        assert(!(provider is ProtectedProvider), "pass a ProtectedProvider as one: Pipeline.start(provider: ProtectedProvider, ...)")
        return try await start(provider: ProtectedProvider(provider, name: providerName, logger: logger), providerName: providerName, store: store,
                        configuration: configuration, text: text, cache: cache, rateLimit: rateLimit, activity: activity,
                        instanceID: instanceID, logger: logger)
    }

    /// The same with a provider already behind its breaker, limiter and retries (the
    /// `resilience:` settings, `Runtime` in EmbedStarApp).
    public static func start(
        provider protected: ProtectedProvider,
        providerName: String,
        store: any RepoStore,
        configuration: PipelineConfiguration,
        text: TextConfiguration = TextConfiguration(),
        cache: EmbeddingCache? = ResilienceConfiguration.Cache().make(),
        rateLimit: ResilienceConfiguration.RateLimit = ResilienceConfiguration.RateLimit(),
        activity: PipelineActivity = PipelineActivity(),
        instanceID: String,
        logger: Logger
    ) async throws -> Pipeline {
        try configuration.validate()
        try await store.prepare()
        let model = try await protected.prepare(retryingFor: .seconds(configuration.storeOutageSeconds))
        return try Pipeline(provider: protected, providerName: providerName, store: store, model: model,
                            configuration: configuration, text: text, cache: cache, rateLimit: rateLimit, activity: activity,
                            instanceID: instanceID, logger: logger)
    }

    init(
        provider: ProtectedProvider, providerName: String, store: any RepoStore, model: ModelInfo,
        configuration: PipelineConfiguration, text: TextConfiguration, cache: EmbeddingCache?,
        rateLimit: ResilienceConfiguration.RateLimit = ResilienceConfiguration.RateLimit(), activity: PipelineActivity,
        instanceID: String, logger: Logger
    ) throws {
        self.provider = provider
        self.providerName = providerName
        self.store = store
        self.model = model
        self.configuration = configuration
        self.cache = cache
        self.instanceID = instanceID
        self.logger = logger
        document = try DocumentText(providerName: providerName, model: model, text: text, tokenCount: { [provider] in provider.tokenCount($0) })
        prefixes = document.prefixes
        modelIdentity = document.modelIdentity
        metrics = PipelineMetrics(provider: providerName, model: model.name)
        self.activity = activity
        activity.expect(workers: configuration.parallelWorkers)
        fleetRateLimit = rateLimit.shared
            ? FleetRateLimit(account: rateLimit.account ?? FleetRateLimit.defaultAccount(provider: providerName, model: model.name), owner: instanceID)
            : nil
        stalePace = Mutex(RateLimitBudget(requestsPerMinute: configuration.reembedPerMinute, tokensPerMinute: nil, now: provider.clock.now()))
    }

    // MARK: One batch

    /// Claims one batch and embeds it; `nil` when nothing is pending (or, when `paced`, when
    /// only repos another model embedded are, and their pace is spent for now).
    public func embedNextBatch(paced: Bool = false) async throws -> PipelineSummary? {
        let claimed = try await claimNext(paced: paced)
        guard !claimed.isEmpty else { return nil }
        return try await embedClaimed(claimed)
    }

    /// One claim. The pace is taken before it and the unused part given back right after, so
    /// workers claiming at the same moment never re-embed more than the pace between them.
    private func claimNext(paced: Bool) async throws -> [ClaimedRepo] {
        let clock = provider.clock
        let batchSize = configuration.batchSize
        let staleLimit = paced ? stalePace.withLock { $0.take(upTo: batchSize, now: clock.now()) } : nil
        var stale = 0  // what the claim used of it (none if it failed)
        defer { if let staleLimit { stalePace.withLock { $0.refund(staleLimit - stale) } } }
        let request = ClaimRequest(
            owner: instanceID, limit: batchSize,
            leaseDuration: .seconds(configuration.leaseSeconds), modelIdentity: modelIdentity,
            staleLimit: staleLimit, liveness: .seconds(max(120, 2 * configuration.leaseSeconds)))
        let store = self.store
        // A claim may wait out another instance's sweep of a large table (minutes on a first
        // start): the worker is alive meanwhile, so its heartbeat goes on while the store works
        // on the claim (each store request has its own timeout), for at most 15 minutes.
        let claimed = try await metrics.timed("claim") {
            try await claimGate.claim {
                let beat = heartbeatWhile()
                defer { beat.cancel() }
                let claimed = try await store.claimPending(request)
                // In flight before the gate opens for a release (``embedClaimed`` ends it).
                self.track(claimed.map(\.repo.id), working: true)
                return claimed
            }
        }
        stale = claimed.filter(\.stale).count
        return claimed
    }

    /// Embeds repos this instance has claimed, keeping their leases alive meanwhile; what is not
    /// written is released on error.
    public func embedClaimed(_ claimed: [ClaimedRepo]) async throws -> PipelineSummary {
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
            return try await runBatch(claimed)
        } catch {
            // Whatever was not written goes back to the queue now rather than at lease expiry
            // (if the store is down, the release after the outage does it).
            await releaseOutsideCancellation(ids)
            throw error
        }
    }

    /// What a ``BatchPlan`` of this pipeline needs to know.
    var planRules: BatchPlan.Rules {
        BatchPlan.Rules(document: document, tokenCount: { [provider] in provider.tokenCount($0) },
                        modelIdentity: modelIdentity, retryDelay: .milliseconds(configuration.retryDelayMs))
    }

    /// The batch step's I/O: the plan says what to send and what to write; this sends and writes.
    func runBatch(_ claimed: [ClaimedRepo]) async throws -> PipelineSummary {
        let started = provider.clock.now()
        var log = logger
        log[metadataKey: "batch"] = "\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        var summary = PipelineSummary()
        summary.claimed = claimed.count

        var plan = BatchPlan(claimed, rules: planRules)
        // The cache is read and written here, and only here: the plan says what to ask it and
        // what its answers add.
        if let cache {
            summary.cacheHits = plan.answerFromCache { cache.get($0) }
            metrics.cache(hits: plan.cacheHits, misses: plan.unanswered.count)
        }
        let maxTokens = [configuration.maxBatchTokens, model.maxBatchTokens].compactMap { $0 }.min()
        for slots in plan.requests(maxCount: max(1, min(configuration.batchSize, model.maxBatchSize)), maxTokens: maxTokens) {
            let answers = try await provider.embedEach(slots.map { plan.texts[$0] }, tokens: slots.map { plan.tokens[$0] }, mode: .document)
            summary.providerCalls += answers.calls.requests
            summary.textsSent += answers.calls.texts
            for (hash, vector) in plan.answer(slots, with: answers.results) { cache?.put(hash, vector) }
        }

        let outcome = plan.outcome(generatedAt: Date())
        if !outcome.writes.isEmpty {
            let results = try await metrics.timed("write") { try await store.write(outcome.writes, owner: instanceID) }
            summary.count(outcome.writes, outcomes: results)
            for write in outcome.writes {
                log.debug("repo written", metadata: ["repo": "\(write.id)", "outcome": "\((results[write.id] ?? .notFound).rawValue)",
                                                     "change": "\(write.change.isEmbedding ? "embedded" : "unchanged")"])
            }
        }
        if !outcome.failures.isEmpty {
            log.warning("repos could not be embedded this time", metadata: [
                "count": "\(outcome.failures.count)", "first_reason": "\(outcome.failures[0].reason)",
            ])
            let results = try await metrics.timed("failures") {
                try await store.recordFailures(outcome.failures, owner: instanceID, maxAttempts: configuration.maxAttempts)
            }
            summary.count(failures: results)
            for (id, result) in results {
                switch result {
                case .failed(let attempts):
                    log.warning("repo failed for good", metadata: ["repo": "\(id)", "attempts": "\(attempts)"])
                case .willRetry(let attempts):
                    log.debug("repo will be retried", metadata: ["repo": "\(id)", "attempts": "\(attempts)"])
                }
            }
        }
        if !outcome.released.isEmpty {
            try await store.release(outcome.released, owner: instanceID)
            summary.released += outcome.released.count
        }
        metrics.record(summary)
        log.info("batch done", metadata: [
            "claimed": "\(summary.claimed)", "embedded": "\(summary.embedded)", "unchanged": "\(summary.unchanged)",
            "failed": "\(summary.failed)", "retrying": "\(summary.retrying)", "conflicts": "\(summary.conflicts)",
            "released": "\(summary.released)", "provider_calls": "\(summary.providerCalls)",
            "ms": "\(Int((provider.clock.now() - started).nanoseconds / 1_000_000))",
        ])
        return summary
    }
}
