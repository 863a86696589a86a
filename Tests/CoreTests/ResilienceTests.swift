import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The limiter, breaker, retry policy and cache as state machines on a hand-moved clock.
@Suite struct RateLimiterTests {
    /// Two workers claiming at once: the second sees only what the first left, and what the
    /// first did not use comes back (the re-embedding pace overshot when both read the budget
    /// before either spent it).
    @Test func takeSharesTheBudgetBetweenCallersAndRefundGivesBackTheRest() {
        var budget = RateLimitBudget(requestsPerMinute: 15, tokensPerMinute: nil, now: .zero)
        #expect(budget.take(upTo: 10, now: .zero) == 10)
        #expect(budget.take(upTo: 10, now: .zero) == 5)
        #expect(budget.take(upTo: 10, now: .zero) == 0)
        budget.refund(7)  // the first claim found 3 stale repos
        #expect(budget.take(upTo: 10, now: .zero) == 7)
        budget.refund(100)
        #expect(budget.available(now: .zero) == 15, "a refund never grows the budget past a minute's worth")
        var unlimited = RateLimitBudget(requestsPerMinute: nil, tokensPerMinute: nil, now: .zero)
        #expect(unlimited.take(upTo: 10, now: .zero) == 10)
    }

    @Test func requestsPerMinuteSpaceCallsOutAfterTheBurst() {
        var budget = RateLimitBudget(requestsPerMinute: 60, tokensPerMinute: nil, now: .zero)
        for _ in 0..<60 { #expect(budget.reserve(cost: 1, now: .zero) == .zero) }  // a minute's budget at once
        #expect(budget.reserve(cost: 1, now: .zero) == .seconds(1))
        #expect(budget.reserve(cost: 1, now: .zero) == .seconds(2))
        // Time refills the bucket: 10 s later the two booked requests are paid for and 8 are free.
        for _ in 0..<8 { #expect(budget.reserve(cost: 1, now: .seconds(10)) == .zero) }
        #expect(budget.reserve(cost: 1, now: .seconds(10)) > .zero)
    }

    @Test func tokensPerMinuteWaitForTheirCost() {
        var budget = RateLimitBudget(requestsPerMinute: nil, tokensPerMinute: 6_000, now: .zero)
        #expect(budget.reserve(cost: 6_000, now: .zero) == .zero)
        #expect(budget.reserve(cost: 1_000, now: .zero) == .seconds(10))
        // A batch above a minute's budget waits for a full bucket, never forever.
        var small = RateLimitBudget(requestsPerMinute: nil, tokensPerMinute: 100, now: .zero)
        #expect(small.reserve(cost: 5_000, now: .zero) == .zero)
        #expect(small.reserve(cost: 5_000, now: .zero) == .seconds(60))
    }

    @Test func retryAfterPausesEverythingUntilItIsUp() {
        var budget = RateLimitBudget(requestsPerMinute: nil, tokensPerMinute: nil, now: .zero)
        budget.pause(for: .seconds(2), now: .seconds(5))
        #expect(budget.reserve(cost: 1, now: .seconds(5)) == .seconds(2))
        #expect(budget.reserve(cost: 1, now: .milliseconds(6_500)) == .milliseconds(500))
        #expect(budget.reserve(cost: 1, now: .seconds(7)) == .zero)
    }

    @Test func headersSetLimitsAndPauseWhenNothingRemains() {
        var budget = RateLimitBudget(requestsPerMinute: nil, tokensPerMinute: nil, now: .zero)
        var hint = RateLimitHint(provider: "openai")
        hint.requestsLimit = 120
        hint.requestsRemaining = 1
        budget.adapt(hint, now: .zero)
        #expect(budget.requestsPerMinute == 120)
        #expect(budget.reserve(cost: 1, now: .zero) == .zero)
        #expect(budget.reserve(cost: 1, now: .zero) == .milliseconds(500))  // 120/min: one every 0.5 s
        hint.requestsRemaining = 0
        hint.requestsReset = .seconds(7)
        budget.adapt(hint, now: .seconds(1))
        #expect(budget.reserve(cost: 1, now: .seconds(1)) >= .seconds(7))
    }

    @Test func theLimiterSleepsOnItsClock() async throws {
        let clock = ManualClock()
        let limiter = RateLimiter(requestsPerMinute: 2, tokensPerMinute: nil, clock: clock)
        for _ in 0..<3 { try await limiter.acquire(cost: 1) }
        #expect(clock.slept.filter { $0 > .zero } == [.seconds(30)])
        #expect(clock.now() == .seconds(30))
    }
}

@Suite struct CircuitBreakerTests {
    func breaker(threshold: Int = 3, rate: Double = 0.5, minimum: Int = 10, probes: Int = 1) -> CircuitBreakerState {
        var settings = CircuitBreakerState.Settings()
        settings.failureThreshold = threshold
        settings.failureRate = rate
        settings.minimumRequests = minimum
        settings.openDuration = .seconds(30)
        settings.window = .seconds(60)
        settings.halfOpenProbes = probes
        return CircuitBreakerState(settings: settings)
    }

    @Test func opensAfterConsecutiveFailuresAndRejectsWhileOpen() {
        var b = breaker()
        for second in 0..<2 {
            #expect(b.permit(now: .seconds(second)) == .allowed)
            b.recordFailure(now: .seconds(second))
        }
        #expect(b.state == .closed)
        b.recordFailure(now: .seconds(2))
        #expect(b.state == .open(until: .seconds(32)))
        #expect(b.state.gauge == 1)
        #expect(b.permit(now: .seconds(12)) == .rejected(retryIn: .seconds(20)))
    }

    @Test func aSuccessResetsTheConsecutiveCount() {
        var b = breaker()
        b.recordFailure(now: .zero)
        b.recordFailure(now: .zero)
        b.recordSuccess(now: .zero)
        b.recordFailure(now: .zero)
        b.recordFailure(now: .zero)
        #expect(b.state == .closed)
    }

    @Test func opensOnTheFailureRateOverTheMinimumOfRequests() {
        var b = breaker(threshold: 100, rate: 0.5, minimum: 10)
        for i in 0..<9 {
            if i.isMultiple(of: 2) { b.recordFailure(now: .seconds(i)) } else { b.recordSuccess(now: .seconds(i)) }
        }
        #expect(b.state == .closed)  // 5 of 9: under the minimum of requests
        b.recordFailure(now: .seconds(9))
        #expect(b.state == .open(until: .seconds(39)))  // 6 of 10
        // Old outcomes leave the window.
        var c = breaker(threshold: 100, rate: 0.5, minimum: 4)
        c.recordFailure(now: .zero)
        c.recordFailure(now: .zero)
        c.recordSuccess(now: .seconds(100))
        c.recordSuccess(now: .seconds(100))
        c.recordFailure(now: .seconds(100))
        #expect(c.state == .closed)
    }

    @Test func halfOpenProbesCloseOrReopen() {
        var b = breaker(threshold: 1, probes: 2)
        b.recordFailure(now: .zero)
        #expect(b.permit(now: .seconds(30)) == .allowed)
        #expect(b.state == .halfOpen(inFlight: 1, succeeded: 0))
        #expect(b.state.gauge == 2)
        #expect(b.permit(now: .seconds(30)) == .allowed)
        #expect(b.permit(now: .seconds(30)) == .rejected(retryIn: .milliseconds(100)))  // only two probes
        b.recordSuccess(now: .seconds(31))
        #expect(b.state == .halfOpen(inFlight: 1, succeeded: 1))
        b.recordSuccess(now: .seconds(31))
        #expect(b.state == .closed)

        b.recordFailure(now: .seconds(40))
        #expect(b.permit(now: .seconds(70)) == .allowed)
        b.recordFailure(now: .seconds(71))
        #expect(b.state == .open(until: .seconds(101)))
    }

    /// Item 10 of issue 14: a call let through before the circuit opened that fails late (a
    /// straggler) must not reopen the half-open circuit; the probe decides.
    @Test func aStragglerFromBeforeTheOpeningDoesNotDecideTheProbe() {
        var b = breaker(threshold: 2)
        #expect(b.permit(now: .zero) == .allowed)
        let straggler = b.openings  // a slow call, permitted while closed
        b.recordFailure(now: .seconds(1))
        b.recordFailure(now: .seconds(1))
        #expect(b.state == .open(until: .seconds(31)))
        #expect(b.permit(now: .seconds(31)) == .allowed)  // the probe
        let probe = b.openings
        b.recordFailure(now: .seconds(32), permittedIn: straggler)
        #expect(b.state == .halfOpen(inFlight: 1, succeeded: 0), "the straggler's failure must not reopen the circuit")
        b.recordSuccess(now: .seconds(33))
        #expect(b.state == .closed)
        // The probe's own failure still reopens it.
        b.recordFailure(now: .seconds(40))
        b.recordFailure(now: .seconds(40))
        #expect(b.permit(now: .seconds(70)) == .allowed)
        b.recordFailure(now: .seconds(71), permittedIn: b.openings)
        #expect(b.state == .open(until: .seconds(101)))
        #expect(probe < b.openings)
    }

    @Test func neutralAnswersFreeTheProbeWithoutDeciding() {
        var b = breaker(threshold: 1)
        b.recordFailure(now: .zero)
        #expect(b.permit(now: .seconds(30)) == .allowed)
        b.recordNeutral()  // a 429: the provider is up but busy
        #expect(b.state == .halfOpen(inFlight: 0, succeeded: 0))
        #expect(b.permit(now: .seconds(31)) == .allowed)
    }
}

@Suite struct RetryPolicyTests {
    @Test func fullJitterStaysUnderTheCappedExponentialStep() {
        var policy = RetryPolicy()
        policy.maxAttempts = 10
        policy.baseDelay = .milliseconds(100)
        policy.maxDelay = .seconds(2)
        policy.deadline = .seconds(3600)
        var random = SeededRandom(seed: 9)
        for attempt in 1..<10 {
            let cap = min(Duration.seconds(2), .milliseconds(100) * (1 << (attempt - 1)))
            var waits: [Duration] = []
            for _ in 0..<200 { waits.append(policy.delay(afterAttempt: attempt, elapsed: .zero, using: &random)!) }
            #expect(waits.allSatisfy { $0 >= .zero && $0 <= cap })
            // Full jitter: spread over the whole range, not clustered at the cap.
            #expect(waits.min()! < cap / 4 && waits.max()! > cap * 3 / 4)
        }
    }

    @Test func attemptsAndTheDeadlineBoundIt() {
        var policy = RetryPolicy()
        policy.maxAttempts = 3
        policy.baseDelay = .seconds(1)
        policy.maxDelay = .seconds(1)
        policy.deadline = .seconds(10)
        var random = SeededRandom(seed: 1)
        #expect(policy.delay(afterAttempt: 2, elapsed: .zero, using: &random) != nil)
        #expect(policy.delay(afterAttempt: 3, elapsed: .zero, using: &random) == nil)
        #expect(policy.delay(afterAttempt: 1, elapsed: .seconds(10), using: &random) == nil)
        #expect(policy.allows(wait: .seconds(2), elapsed: .seconds(7)))
        #expect(!policy.allows(wait: .seconds(4), elapsed: .seconds(7)))
    }
}

@Suite struct EmbeddingCacheTests {
    @Test func hitsMissesLeastRecentlyUsedAndTheByteBound() {
        let clock = ManualClock()
        let vector = [Float](repeating: 0.5, count: 100)
        let one = EmbeddingCache.costForTests(key: "k0", vector: vector)
        let cache = EmbeddingCache(maxBytes: one * 3, ttl: .seconds(60), clock: clock)
        for key in ["k0", "k1", "k2"] { cache.put(key, vector) }
        #expect(cache.get("k0") == vector)  // k0 is now the most recent
        cache.put("k3", vector)  // evicts k1, the least recently used
        #expect(cache.get("k1") == nil)
        #expect(cache.get("k2") != nil && cache.get("k3") != nil && cache.get("k0") != nil)
        let stats = cache.statistics
        #expect(stats.entries == 3 && stats.bytes <= one * 3)
        #expect(stats.hits == 4 && stats.misses == 1)
    }

    @Test func entriesExpire() {
        let clock = ManualClock()
        let cache = EmbeddingCache(maxBytes: 1 << 20, ttl: .seconds(60), clock: clock)
        cache.put("k", [1, 2, 3])
        clock.advance(by: .seconds(59))
        #expect(cache.get("k") != nil)
        clock.advance(by: .seconds(2))
        #expect(cache.get("k") == nil)
        #expect(cache.statistics.entries == 0)
    }

    @Test func anEntryLargerThanTheBoundIsNotKept() {
        let cache = EmbeddingCache(maxBytes: 100, ttl: .seconds(60), clock: ManualClock())
        cache.put("big", [Float](repeating: 1, count: 1_000))
        #expect(cache.get("big") == nil)
        #expect(cache.statistics.bytes == 0)
    }
}

/// Returns once the pipeline's worker loops went round `times` more times: long enough for them
/// to do what they would do, without sleeping for a guessed time.
func workersGoRound(_ pipeline: Pipeline, times: Int = 10) async throws {
    let start = pipeline.activity.snapshot.rounds
    #expect(try await waitUntil { pipeline.activity.snapshot.rounds >= start + times }, "the workers stopped going round")
}

/// The pipeline with its protection on a hand-moved clock: outages and rate-limit storms play
/// out in milliseconds of real time.
@Suite struct PipelineResilienceTests {
    /// The mock provider behind a switch, recording when (on the test clock) each call came.
    final class Flaky: EmbeddingProvider {
        let inner = mockProvider()
        let clock: ManualClock
        let state = Mutex<(down: Bool, rateLimits: Int, calls: [(at: Duration, answer: String)])>((false, 0, []))
        var model: ModelInfo { inner.model }

        init(clock: ManualClock) { self.clock = clock }

        /// While set, a call waits (a provider that hangs) until it is cleared.
        let hang = Mutex(false)

        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
            while hang.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            let now = clock.now()
            let answer = state.withLock { state -> String in
                let answer = state.down ? "503" : state.rateLimits > 0 ? "429" : "ok"
                if answer == "429" { state.rateLimits -= 1 }
                state.calls.append((now, answer))
                return answer
            }
            switch answer {
            case "503": throw EmbeddingError(.retryable, "503 Service Unavailable")
            case "429": throw EmbeddingError(.rateLimited(retryAfter: .seconds(2)), "429 Too Many Requests")
            default: return try await inner.embed(texts, mode: mode)
            }
        }

        func health() async -> ComponentHealth { .up }
        var calls: [(at: Duration, answer: String)] { state.withLock { $0.calls } }
    }

    func protected(_ provider: Flaky, _ clock: ManualClock) -> ProtectedProvider {
        var configuration = ResilienceConfiguration()
        configuration.retry.maxAttempts = 2
        configuration.circuitBreaker.failureThreshold = 3
        configuration.circuitBreaker.openSeconds = 30
        return ProtectedProvider(provider, name: "flaky", resilience: configuration, clock: clock)
    }

    /// A pipeline over the flaky provider on the test clock, polling fast, retrying repos at once.
    func flakyPipeline(_ provider: Flaky, _ store: any RepoStore, _ clock: ManualClock, batchSize: Int, workers: Int, instance: String) async throws -> Pipeline {
        var configuration = PipelineConfiguration()
        configuration.batchSize = batchSize
        configuration.parallelWorkers = workers
        configuration.retryDelayMs = 0
        configuration.pollIntervalMs = 20
        return try await Pipeline.start(provider: protected(provider, clock), providerName: "flaky", store: store, configuration: configuration,
                                        instanceID: instance, logger: Logger(label: "test"))
    }

    @Test func anOutageOpensTheCircuitFailsNoRepoAndTheBackfillFinishesWhenTheProviderIsBack() async throws {
        let clock = ManualClock()
        let provider = Flaky(clock: clock)
        provider.state.withLock { $0.down = true }
        let repos = SyntheticRepos.generate(count: 200, seed: 12)
        let store = MockStore(repos: repos)
        let pipeline = try await flakyPipeline(provider, store, clock, batchSize: 20, workers: 2, instance: "outage")
        let backfill = Task { try await pipeline.backfill() }
        try await waitUntil { if case .open = pipeline.provider.breaker.current { true } else { false } }
        let callsWhenOpened = provider.calls.count
        try await workersGoRound(pipeline)
        #expect(provider.calls.count == callsWhenOpened, "no provider call while the circuit is open")
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).failed == 0)

        provider.state.withLock { $0.down = false }
        clock.advance(by: .seconds(31))  // the open period ends: one probe, then closed
        let summary = try await backfill.value
        #expect(pipeline.provider.breaker.current == .closed)
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats == StoreStats(total: 200, embedded: 200, pending: 0, failed: 0, leased: 0))
        #expect(summary.failed == 0)
        // After the outage the calls succeed; the failures all came before the circuit opened.
        let failedCalls = provider.calls.filter { $0.answer == "503" }.count
        #expect(failedCalls == callsWhenOpened, "\(failedCalls) failed calls, \(callsWhenOpened) before it opened")
    }

    /// Item 4 of issue 14: while the half-open probe is out, the other workers wait; they do
    /// not claim a batch, meet "circuit open" and hand it back in a loop.
    @Test func whileTheProbeIsOutTheOtherWorkersWaitInsteadOfSpinningClaims() async throws {
        final class CountingClaims: ForwardingStore {
            let inner: any RepoStore
            let claims = Mutex(0)
            init(inner: any RepoStore) { self.inner = inner }
            func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
                claims.withLock { $0 += 1 }
                return try await inner.claimPending(request)
            }
        }
        let clock = ManualClock()
        let provider = Flaky(clock: clock)
        provider.state.withLock { $0.down = true }
        let store = CountingClaims(inner: MockStore(repos: SyntheticRepos.generate(count: 100, seed: 3)))
        let pipeline = try await flakyPipeline(provider, store, clock, batchSize: 10, workers: 4, instance: "probe")
        let backfill = Task { try await pipeline.backfill() }
        try await waitUntil { if case .open = pipeline.provider.breaker.current { true } else { false } }
        // The provider hangs now: the probe that goes when the open period ends stays out.
        provider.hang.withLock { $0 = true }
        provider.state.withLock { $0.down = false }
        clock.advance(by: .seconds(31))
        try await waitUntil { pipeline.provider.breaker.probesAllOut }
        let claimsWhenProbing = store.claims.withLock { $0 }
        try await workersGoRound(pipeline, times: 20)
        let claimsDuringProbe = store.claims.withLock { $0 } - claimsWhenProbing
        #expect(claimsDuringProbe <= 3, "\(claimsDuringProbe) claims while the probe was out: the workers spin instead of waiting")
        provider.hang.withLock { $0 = false }
        _ = try await backfill.value
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 100)
    }

    /// Item 10 of issue 14: a 429 that names no wait backs off (doubling, jittered), not a flat second.
    @Test func aRateLimitWithoutRetryAfterBacksOff() {
        for (count, low, high) in [(0, 500, 1_000), (1, 1_000, 2_000), (3, 4_000, 8_000), (6, 32_000, 64_000), (20, 32_000, 64_000)] {
            for _ in 0..<20 {
                let wait = ProtectedProvider.rateLimitBackoff(afterRateLimits: count)
                #expect(wait >= .milliseconds(low) && wait <= .milliseconds(high), "after \(count) rate limits: \(wait)")
            }
        }
    }

    /// Item 6 of issue 14: batches slower than their lease, two instances on one store: the
    /// leases are renewed while the batches are in flight, so the provider sees each repo once.
    @Test func batchesSlowerThanTheirLeaseAreNotEmbeddedTwice() async throws {
        let store = MockStore(repos: SyntheticRepos.generate(count: 36, seed: 9))
        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.latencyMs = 2_500  // 2.5 leases
        let provider = MockProvider(configuration: providerConfiguration)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 4
        configuration.parallelWorkers = 3
        configuration.leaseSeconds = 1
        configuration.pollIntervalMs = 50
        let a = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: configuration,
                                         instanceID: "a", logger: Logger(label: "test"))
        let b = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: configuration,
                                         instanceID: "b", logger: Logger(label: "test"))
        // "a" claims 12 repos at once; "b" starts when their first lease has run out.
        async let first = a.backfill()
        try await Task.sleep(for: .milliseconds(1300))
        async let second = b.backfill()
        let summaries = try await [first, second]
        #expect(try await store.stats(modelIdentity: a.modelIdentity).embedded == 36)
        #expect(provider.statistics.texts == 36, "the provider embedded \(provider.statistics.texts) texts for 36 repos")
        #expect(summaries.reduce(0) { $0 + $1.embedded } == 36)
    }

    @Test func aRateLimitStormIsWaitedOutExactlyAndTheBackfillCompletes() async throws {
        let clock = ManualClock()
        let provider = Flaky(clock: clock)
        provider.state.withLock { $0.rateLimits = 6 }
        let repos = SyntheticRepos.generate(count: 60, seed: 13)
        let store = MockStore(repos: repos)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 10
        configuration.parallelWorkers = 2
        configuration.retryDelayMs = 0
        let pipeline = try await Pipeline.start(provider: protected(provider, clock), providerName: "flaky", store: store, configuration: configuration,
                                                instanceID: "storm", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 60)
        #expect(summary.failed == 0 && summary.retrying == 0)
        let calls = provider.calls
        #expect(calls.filter { $0.answer == "429" }.count == 6)
        // No call, from any worker, before the 2 s a 429 asked for were up, but the other
        // worker's call that had already passed the limiter when the 429 came back: at most one,
        // at the 429's own instant (the clock moves only when someone waits).
        for (index, call) in calls.enumerated() where call.answer == "429" {
            let early = calls[(index + 1)...].filter { $0.at < call.at + .seconds(2) }
            #expect(early.count <= configuration.parallelWorkers - 1 && early.allSatisfy { $0.at == call.at },
                    "calls at \(early.map(\.at)) came before the retry-after of the 429 at \(call.at) was up")
        }
        #expect(pipeline.provider.breaker.current == .closed, "rate limits are not failures of the circuit")
    }

    @Test func theCacheSparesTheProviderATextItHasEmbedded() async throws {
        let repos = SyntheticRepos.generate(count: 30, seed: 14)
        let provider = mockProvider()
        let cache = ResilienceConfiguration.Cache().make()
        var configuration = PipelineConfiguration()
        configuration.batchSize = 10
        let first = MockStore(repos: repos)
        let pipeline = try await Pipeline.start(provider: provider, providerName: "mock", store: first, configuration: configuration,
                                                cache: cache, instanceID: "cache", logger: Logger(label: "test"))
        _ = try await pipeline.backfill()
        let callsAfterFirst = provider.statistics.texts
        // The same repos in a second store: same texts, same model, all from the cache.
        let again = try await Pipeline.start(provider: provider, providerName: "mock", store: MockStore(repos: repos), configuration: configuration,
                                             cache: cache, instanceID: "cache2", logger: Logger(label: "test"))
        let summary = try await again.backfill()
        #expect(summary.embedded == 30)
        #expect(summary.cacheHits == 30)
        #expect(provider.statistics.texts == callsAfterFirst, "no text was sent twice")
        #expect(cache?.statistics.hits == 30)
    }
}

@Suite struct RateLimiterPauseTests {
    @Test func aPauseThatArrivesWhileACallWaitsHoldsItToo() async throws {
        let clock = ManualClock(autoAdvance: false)
        let limiter = RateLimiter(requestsPerMinute: nil, tokensPerMinute: nil, clock: clock)
        limiter.pause(for: .seconds(2))
        let finished = Mutex(false)
        let waiting = Task {
            let waited = try await limiter.acquire(cost: 1)
            finished.withLock { $0 = true }
            return waited
        }
        try await waitUntil { clock.sleeping == 1 }
        // While that call sleeps its 2 s, another worker's 429 asks for 5 s from now.
        limiter.pause(for: .seconds(5))
        clock.advance(by: .seconds(2))
        try await waitUntil { clock.sleeping == 1 && clock.slept.count == 2 }  // it went back to sleep
        #expect(!finished.withLock { $0 })
        clock.advance(by: .seconds(3))
        #expect(try await waiting.value == .seconds(5))
    }
}

@Suite struct ModelChangeTests {
    @Test func aModelChangeIsReembeddedAtItsPaceWhileChangedReposGoFirst() async throws {
        let repos = SyntheticRepos.generate(count: 100, seed: 15)
        let store = MockStore(repos: repos)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 10
        configuration.parallelWorkers = 2
        configuration.pollIntervalMs = 10
        let old = try await Pipeline.start(provider: mockProvider { $0.model = "old-model" }, providerName: "mock", store: store,
                                           configuration: configuration, instanceID: "old", logger: Logger(label: "test"))
        _ = try await old.backfill()

        let clock = ManualClock()
        configuration.reembedPerMinute = 30
        let new = try await Pipeline.start(provider: ProtectedProvider(mockProvider { $0.model = "new-model" }, name: "mock", clock: clock),
                                           providerName: "mock", store: store, configuration: configuration,
                                           instanceID: "new", logger: Logger(label: "test"))
        let stop = StopSignal()
        let service = Task { try await new.run(stop: stop) }
        func covered() async throws -> Int { try await store.coverage()[new.modelIdentity] ?? 0 }
        try await waitUntil { try await covered() == 30 }
        try await workersGoRound(new)
        #expect(try await covered() == 30, "a minute's pace, no more")
        #expect(try await store.coverage()[old.modelIdentity] == 70)

        // A repo that changes meanwhile is not held back by the pace.
        var changed = repos[99]
        changed.description = "rewritten while the model changes"
        await store.upsert(changed)
        try await waitUntil { await store.entry(changed.id)?.embeddingModel == new.modelIdentity }
        #expect(try await covered() == 31)

        clock.advance(by: .seconds(60))
        try await waitUntil { try await covered() == 61 }
        try await workersGoRound(new)
        #expect(try await covered() == 61)
        clock.advance(by: .seconds(120))  // the budget holds a minute's worth at most
        try await waitUntil { try await covered() == 91 }
        clock.advance(by: .seconds(60))
        try await waitUntil { try await covered() == 100 }
        #expect(try await store.coverage()[old.modelIdentity] == nil)
        stop.trigger()
        _ = try await service.value
    }
}
