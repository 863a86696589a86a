import Logging
import Metrics

/// What stands between the pipeline and a provider: the rate limiter, the circuit breaker, the
/// retry policy, the cache and the vector checks. Built before the provider, so the provider's
/// rate-limit headers reach the limiter (``PluginContext/rateLimitObserver``).
public final class ProviderProtection: Sendable {
    public let limiter: RateLimiter
    public let breaker: CircuitBreaker
    public let retry: RetryPolicy
    /// Nil when `resilience.cache.max_bytes` is 0.
    public let cache: EmbeddingCache?
    public let validator: VectorValidator
    public let clock: any ResilienceClock

    public init(_ configuration: ResilienceConfiguration = ResilienceConfiguration(), provider: String,
                clock: any ResilienceClock = SystemResilienceClock(), logger: Logger = Logger(label: "embed-star")) {
        self.clock = clock
        limiter = RateLimiter(requestsPerMinute: configuration.rateLimit.requestsPerMinute,
                              tokensPerMinute: configuration.rateLimit.tokensPerMinute, clock: clock)
        let gauge = Gauge(label: MetricNames.circuitBreakerState, dimensions: [("provider", provider)])
        breaker = CircuitBreaker(settings: configuration.circuitBreaker.settings, clock: clock) { state in
            gauge.record(state.gauge)
            logger.warning("circuit to the provider changed", metadata: ["provider": "\(provider)", "state": "\(state.name)"])
        }
        retry = configuration.retry.policy
        cache = configuration.cache.maxBytes > 0 ? EmbeddingCache(maxBytes: configuration.cache.maxBytes, ttl: .seconds(configuration.cache.ttlSeconds), clock: clock) : nil
        validator = configuration.validation.validator
    }
}

extension CircuitBreaker {
    /// How long no call may be tried from now: the rest of the open period, or, while every
    /// half-open probe is out, a short wait before looking again (its answer decides); nil when
    /// calls may be tried.
    public var openFor: Duration? {
        if case .open(let until) = current { return until - clockNow }
        return probesAllOut ? .milliseconds(250) : nil
    }
}
