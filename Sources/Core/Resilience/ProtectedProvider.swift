import Logging
import Metrics
import Synchronization

/// A provider wrapped in what protects it and its callers: the circuit breaker, the rate
/// limiter, retries with backoff, vector checks, and isolation of inputs the backend rejects.
///
/// It is an ``EmbeddingProvider`` itself, so the caller sees one provider; the runtime builds it
/// from the `resilience:` section around whichever provider the configuration names.
/// ``embed(_:mode:)`` keeps the protocol's contract (all vectors or an error);
/// ``embedEach(_:tokens:mode:)`` answers each text on its own, which is what the pipeline needs so that
/// one bad input never sinks its batch.
public final class ProtectedProvider: EmbeddingProvider {
    /// The provider this one protects.
    public let base: any EmbeddingProvider
    /// The provider's registered name (the `provider` label of its metrics).
    public let name: String
    public let limiter: RateLimiter
    public let breaker: CircuitBreaker
    public let retry: RetryPolicy
    public let validator: VectorValidator
    /// Every wait and every measured duration of this provider runs on this clock.
    public let clock: any ResilienceClock

    /// How long calls are paused for because the circuit is open, or nil when it is not (the
    /// rate limiter's waits happen inside a call, not here): the pipeline's workers wait this out
    /// instead of claiming repos they would hand back.
    public var callsPausedFor: Duration? { breaker.openFor }
    /// Learned from the model or the first vector; every later vector must match.
    private let learnedDimensions: Mutex<Int?>
    private let metrics: ProviderMetrics
    private let logger: Logger

    /// - Parameter limiter: pass the limiter the provider's rate-limit headers feed
    ///   (``PluginContext/rateLimitObserver``), built before the provider; nil builds one from
    ///   `resilience`.
    public init(_ base: any EmbeddingProvider, name: String, resilience: ResilienceConfiguration = ResilienceConfiguration(),
                limiter: RateLimiter? = nil, clock: any ResilienceClock = SystemResilienceClock(), logger: Logger = Logger(label: "embed-star")) {
        self.base = base
        self.name = name
        self.clock = clock
        self.logger = logger
        self.limiter = limiter ?? RateLimiter(requestsPerMinute: resilience.rateLimit.requestsPerMinute,
                                               tokensPerMinute: resilience.rateLimit.tokensPerMinute, clock: clock)
        let gauge = Gauge(label: MetricNames.circuitBreakerState, dimensions: [("provider", name)])
        breaker = CircuitBreaker(settings: resilience.circuitBreaker.settings, clock: clock) { state in
            gauge.record(state.gauge)
            logger.warning("circuit to the provider changed", metadata: ["provider": "\(name)", "state": "\(state.name)"])
        }
        retry = resilience.retry.policy
        validator = resilience.validation.validator
        learnedDimensions = Mutex(base.model.dimensions)
        metrics = ProviderMetrics(provider: name, model: base.model.name)
    }

    public var model: ModelInfo { base.model }

    public func tokenCount(_ text: String) -> Int { base.tokenCount(text) }

    public func health() async -> ComponentHealth { await base.health() }

    /// The base provider's model facts; dimensions it names become the ones every vector must have.
    public func prepare() async throws -> ModelInfo {
        let model = try await base.prepare()
        if let dimensions = model.dimensions { learnedDimensions.withLock { $0 = dimensions } }
        return model
    }

    /// ``prepare()``, with a retryable failure (the provider is down at start) tried again with
    /// backoff until `giveUpAfter`, never answered with a guess.
    public func prepare(retryingFor giveUpAfter: Duration) async throws -> ModelInfo {
        let started = clock.now()
        var attempt = 0
        while true {
            let delay = RetryPolicy.halfJitter(step: attempt, base: .seconds(1), cap: .seconds(30))
            attempt += 1
            do {
                return try await prepare()
            } catch let error as EmbeddingError where error.kind == .retryable && clock.now() - started + delay < giveUpAfter {
                logger.warning("the provider cannot describe its model yet; trying again", metadata: [
                    "error": "\(error)", "retry_in_seconds": "\(delay.seconds)",
                ])
                try await clock.sleep(for: delay)
            }
        }
    }

    /// The dimensions every vector must have: the model's, or the first vector's.
    public var dimensions: Int? { learnedDimensions.withLock { $0 } }

    /// All vectors or an error, with the breaker, limiter and retries in front of the base
    /// provider. A vector that fails the checks fails the call.
    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        var calls = Calls()
        let vectors = try await embedWithRetry(texts, cost: texts.reduce(0) { $0 + base.tokenCount($1) }, mode: mode, calls: &calls)
        guard vectors.count == texts.count else {
            throw EmbeddingError(.retryable, "provider returned \(vectors.count) vectors for \(texts.count) texts")
        }
        try checkDimensionsOfTheBatch(vectors)
        for vector in vectors {
            if case .failure(let problem) = check(vector) { throw EmbeddingError(.retryable, problem.reason) }
        }
        return vectors
    }

    /// What the calls for one set of texts cost.
    public struct Calls: Sendable, Hashable {
        /// Requests sent to the base provider, retries included.
        public var requests = 0
        /// Texts those requests carried.
        public var texts = 0

        public init() {}
    }

    /// One answer per text, in order, and what it cost.
    public struct Answers: Sendable {
        public var results: [Result<[Float], ItemProblem>]
        public var calls: Calls
    }

    /// Embeds `texts`, answering each on its own: inputs the backend rejects are isolated (by the
    /// indices it names, else by halving) so the rest are embedded; a vector that fails the
    /// checks fails its text alone. Throws only what ends the run (a `.fatal` error, vectors of
    /// another size than the model's) and cancellation.
    /// - Parameter tokens: each text's cost for the rate limiter, when the caller measured it
    ///   already (the pipeline does, building the text); nil to count with the provider's
    ///   ``EmbeddingProvider/tokenCount(_:)``.
    public func embedEach(_ texts: [String], tokens: [Int]? = nil, mode: EmbeddingMode = .document) async throws -> Answers {
        precondition(tokens == nil || tokens?.count == texts.count, "one token cost per text")
        var calls = Calls()
        let results = try await embedIsolating(texts, costs: tokens ?? texts.map { base.tokenCount($0) }, mode: mode, calls: &calls)
        return Answers(results: results, calls: calls)
    }

    private func embedIsolating(_ texts: [String], costs: [Int], mode: EmbeddingMode, calls: inout Calls) async throws -> [Result<[Float], ItemProblem>] {
        func all(_ problem: ItemProblem) -> [Result<[Float], ItemProblem>] { Array(repeating: .failure(problem), count: texts.count) }
        do {
            let vectors = try await embedWithRetry(texts, cost: costs.reduce(0, +), mode: mode, calls: &calls)
            guard vectors.count == texts.count else {
                metrics.error("wrong_count")
                return all(ItemProblem(reason: "provider returned \(vectors.count) vectors for \(texts.count) texts", permanent: false))
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
                let restResults = try await embedIsolating(rest.map { texts[$0] }, costs: rest.map { costs[$0] }, mode: mode, calls: &calls)
                var results = all(ItemProblem(reason: "rejected by the provider: \(error.message)", permanent: false))
                for (position, index) in rest.enumerated() { results[index] = restResults[position] }
                return results
            case .invalidInput:
                if texts.count == 1 {
                    return all(ItemProblem(reason: "rejected by the provider: \(error.message)", permanent: false))
                }
                let middle = texts.count / 2
                let left = try await embedIsolating(Array(texts[..<middle]), costs: Array(costs[..<middle]), mode: mode, calls: &calls)
                return left + (try await embedIsolating(Array(texts[middle...]), costs: Array(costs[middle...]), mode: mode, calls: &calls))
            case .rateLimited:
                return all(ItemProblem(reason: error.description, permanent: false, release: true))
            case .retryable:
                return all(ItemProblem(reason: error.description, permanent: false))
            }
        } catch let error as CircuitOpenError {
            // Not the texts' fault: they go back to the queue without an attempt.
            return all(ItemProblem(reason: error.description, permanent: false, release: true))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            metrics.error("other")
            return all(ItemProblem(reason: "provider error: \(error)", permanent: false))
        }
    }

    /// A whole answer of vectors of one other size is the provider's or the configuration's
    /// fault (a backend that ignores the requested `dimensions`, a model swapped behind the same
    /// name), not the texts': the run stops with one message and no repo is marked failed.
    private func checkDimensionsOfTheBatch(_ vectors: [[Float]]) throws {
        guard let size = vectors.first?.count, vectors.allSatisfy({ $0.count == size }),
              let expected = dimensions, size != expected else { return }
        metrics.error("invalid_vector")
        throw EmbeddingError(.fatal, """
            the provider answered \(vectors.count) vector\(vectors.count == 1 ? "" : "s") of \(size) dimensions, but the model \
            \(base.model.name) of \(name) makes \(expected): the backend ignores the configured dimensions, or another model \
            answers under this name. Set the provider's `dimensions` to what the backend makes (a model change), or fix the \
            backend. No repo was marked failed
            """)
    }

    /// `vector` checked as every answer is (its dimensions, finite values, its norm): for
    /// answers that come by another way than a call (a batch's).
    public func checked(_ vector: [Float]) -> Result<[Float], ItemProblem> { check(vector) }

    private func check(_ vector: [Float]) -> Result<[Float], ItemProblem> {
        let expected = learnedDimensions.withLock { learned -> Int in
            let size = learned ?? vector.count
            learned = size
            return size
        }
        if let problem = validator.problem(with: vector, expectedDimensions: expected) {
            metrics.error("invalid_vector")
            return .failure(ItemProblem(reason: "invalid vector from the provider: \(problem)", permanent: false))
        }
        return .success(vector)
    }

    /// The wait after a 429 that named none: 0.5-1 s, doubling with each 429 in a row (with
    /// jitter, so workers do not come back together), at most about a minute.
    public static func rateLimitBackoff(afterRateLimits count: Int) -> Duration {
        RetryPolicy.halfJitter(step: count, base: .seconds(1), cap: .seconds(64))
    }

    /// One provider call with its protection: the circuit must be closed (or this the half-open
    /// probe), the rate limiter must allow it, transient faults are retried with exponential
    /// backoff and full jitter within the retry policy's attempts and deadline, and a
    /// `retry-after` is honoured exactly (no call before it is up) without counting as a failure.
    /// Repo-level retries with longer delays happen through the store's attempt count.
    private func embedWithRetry(_ texts: [String], cost: Int, mode: EmbeddingMode, calls: inout Calls) async throws -> [[Float]] {
        let began = clock.now()
        var failures = 0
        var rateLimited = 0
        var random = SystemRandomNumberGenerator()
        while true {
            let (permit, openings) = breaker.permitted()
            if case .rejected(let retryIn) = permit { throw CircuitOpenError(retryIn: retryIn) }
            do {
                try await limiter.acquire(cost: cost)
            } catch {
                breaker.recordNeutral()
                throw error
            }
            calls.requests += 1
            calls.texts += texts.count
            let started = clock.now()
            let failure: any Error
            do {
                let vectors = try await base.embed(texts, mode: mode)
                metrics.request("ok", duration: clock.now() - started)
                breaker.recordSuccess()
                return vectors
            } catch let error as EmbeddingError {
                metrics.request(error.label, duration: clock.now() - started)
                switch error.kind {
                case .rateLimited(let retryAfter):
                    // Not a failure of the items nor of the circuit: wait exactly as asked.
                    breaker.recordNeutral()
                    metrics.rateLimited()
                    let wait = retryAfter ?? Self.rateLimitBackoff(afterRateLimits: rateLimited)
                    limiter.pause(for: wait)
                    rateLimited += 1
                    // Past the policy's attempts or deadline the texts go back to the caller
                    // (the pipeline releases their repos); the pause still holds every caller's
                    // next call.
                    guard rateLimited < retry.maxAttempts, retry.allows(wait: wait, elapsed: clock.now() - began) else {
                        throw error
                    }
                    logger.debug("provider asked to slow down; waiting", metadata: ["retry_after_ms": "\(wait.nanoseconds / 1_000_000)"])
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
                metrics.request("other", duration: clock.now() - started)
                failure = error
            }
            breaker.recordFailure(permittedIn: openings)
            failures += 1
            guard let wait = retry.delay(afterAttempt: failures, elapsed: clock.now() - began, using: &random) else { throw failure }
            logger.debug("provider call failed; retrying", metadata: ["error": "\(failure)", "attempt": "\(failures)", "wait_ms": "\(wait.nanoseconds / 1_000_000)"])
            try await clock.sleep(for: wait)
        }
    }
}

/// Why one text got no vector.
public struct ItemProblem: Error, Sendable, Hashable {
    public var reason: String
    /// Retrying will not help (``RepoFailure/permanent``). The provider's own answers never set
    /// it: a rejection is counted as an attempt like other failures.
    public var permanent: Bool
    /// Not the item's fault (the provider asked to slow down, the circuit is open): back to the
    /// queue, no attempt counted.
    public var release = false

    public init(reason: String, permanent: Bool, release: Bool = false) {
        self.reason = reason
        self.permanent = permanent
        self.release = release
    }
}

/// The provider's metrics, created once (swift-metrics caches by label and dimensions).
private struct ProviderMetrics: Sendable {
    let provider: String
    let rateLimits: Counter
    let duration: Metrics.Timer

    static let errorKinds = ["retryable", "rate_limited", "invalid_input", "fatal", "invalid_vector", "wrong_count", "other"]

    init(provider: String, model: String) {
        self.provider = provider
        rateLimits = Counter(label: MetricNames.rateLimits, dimensions: [("provider", provider)])
        duration = Metrics.Timer(label: MetricNames.embeddingDuration, dimensions: [("provider", provider), ("model", model)],
                                 preferredDisplayUnit: .seconds)
        // Every error series exists from the start, so rate() alerts see a zero, not a gap.
        for kind in Self.errorKinds {
            Counter(label: MetricNames.embeddingErrors, dimensions: [("provider", provider), ("kind", kind)]).increment(by: 0)
        }
    }

    func error(_ kind: String) {
        Counter(label: MetricNames.embeddingErrors, dimensions: [("provider", provider), ("kind", kind)]).increment()
    }

    func request(_ outcome: String, duration elapsed: Duration) {
        Counter(label: MetricNames.providerRequests, dimensions: [("provider", provider), ("outcome", outcome)]).increment()
        if outcome == "ok" { duration.recordNanoseconds(elapsed.nanoseconds) }
    }

    func rateLimited() { rateLimits.increment() }
}
