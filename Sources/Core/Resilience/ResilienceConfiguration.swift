import Foundation
import EmbedStarConfig

/// `resilience:` in plugins.yaml: how the provider is protected and its answers checked.
public struct ResilienceConfiguration: Decodable, Sendable, Hashable {
    /// The provider account's limits. Instances sharing a store share them (``FleetRateLimit``)
    /// unless `shared` is false.
    public struct RateLimit: Decodable, Sendable, Hashable {
        /// Unset: unlimited until the provider's `x-ratelimit-*` headers say otherwise.
        public var requestsPerMinute: Int?
        public var tokensPerMinute: Int?
        /// Divide the limits (and a `retry-after`) between the instances using the account
        /// through the store; false: every instance takes the whole limits.
        public var shared = true
        /// Which account the limits are: instances naming the same one share them. Unset: the
        /// provider's name and the model (``FleetRateLimit/defaultAccount(provider:model:)``).
        public var account: String?

        public init() {}

        enum CodingKeys: String, CodingKey {
            case requestsPerMinute = "requests_per_minute", tokensPerMinute = "tokens_per_minute", shared, account
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            requestsPerMinute = try c.decodeIfPresent(Int.self, forKey: .requestsPerMinute)
            tokensPerMinute = try c.decodeIfPresent(Int.self, forKey: .tokensPerMinute)
            try c.fill(&shared, .shared)
            account = try c.decodeIfPresent(String.self, forKey: .account)
            if let limit = requestsPerMinute, limit < 1 { throw ConfigError.invalid(CodingKeys.requestsPerMinute.rawValue, "must be at least 1", in: decoder) }
            if let limit = tokensPerMinute, limit < 1 { throw ConfigError.invalid(CodingKeys.tokensPerMinute.rawValue, "must be at least 1", in: decoder) }
            if let account, account.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ConfigError.invalid(CodingKeys.account.rawValue, "must not be empty (leave it out for the provider and model)", in: decoder)
            }
        }
    }

    public struct Breaker: Decodable, Sendable, Hashable {
        public var failureThreshold = 5
        public var failureRate = 0.5
        public var minimumRequests = 10
        public var windowSeconds = 60.0
        public var openSeconds = 30.0
        public var halfOpenProbes = 1

        public init() {}

        enum CodingKeys: String, CodingKey {
            case failureThreshold = "failure_threshold", failureRate = "failure_rate", minimumRequests = "minimum_requests"
            case windowSeconds = "window_seconds", openSeconds = "open_seconds", halfOpenProbes = "half_open_probes"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&failureThreshold, .failureThreshold)
            try c.fill(&failureRate, .failureRate)
            try c.fill(&minimumRequests, .minimumRequests)
            try c.fill(&windowSeconds, .windowSeconds)
            try c.fill(&openSeconds, .openSeconds)
            try c.fill(&halfOpenProbes, .halfOpenProbes)
            func fail(_ key: CodingKeys, _ rule: String) -> ConfigError { .invalid(key.rawValue, rule, in: decoder) }
            guard failureThreshold >= 1 else { throw fail(.failureThreshold, "must be at least 1") }
            guard failureRate > 0, failureRate <= 1 else { throw fail(.failureRate, "must be more than 0 and at most 1") }
            guard minimumRequests >= 1 else { throw fail(.minimumRequests, "must be at least 1") }
            guard windowSeconds > 0, openSeconds > 0 else { throw fail(.openSeconds, "window and open times must be positive") }
            guard halfOpenProbes >= 1 else { throw fail(.halfOpenProbes, "must be at least 1") }
        }

        public var settings: CircuitBreakerState.Settings {
            var settings = CircuitBreakerState.Settings()
            settings.failureThreshold = failureThreshold
            settings.failureRate = failureRate
            settings.minimumRequests = minimumRequests
            settings.window = .seconds(windowSeconds)
            settings.openDuration = .seconds(openSeconds)
            settings.halfOpenProbes = halfOpenProbes
            return settings
        }
    }

    public struct Retry: Decodable, Sendable, Hashable {
        public var maxAttempts = 4
        public var baseDelayMs = 250
        public var maxDelayMs = 10_000
        public var deadlineSeconds = 120.0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case maxAttempts = "max_attempts", baseDelayMs = "base_delay_ms", maxDelayMs = "max_delay_ms", deadlineSeconds = "deadline_seconds"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&maxAttempts, .maxAttempts)
            try c.fill(&baseDelayMs, .baseDelayMs)
            try c.fill(&maxDelayMs, .maxDelayMs)
            try c.fill(&deadlineSeconds, .deadlineSeconds)
            guard maxAttempts >= 1 else { throw ConfigError.invalid(CodingKeys.maxAttempts.rawValue, "must be at least 1", in: decoder) }
            guard baseDelayMs >= 0, maxDelayMs >= baseDelayMs else {
                throw ConfigError.invalid(CodingKeys.maxDelayMs.rawValue, "delays must be zero or more, max at least base", in: decoder)
            }
            guard deadlineSeconds > 0 else { throw ConfigError.invalid(CodingKeys.deadlineSeconds.rawValue, "must be positive", in: decoder) }
        }

        public var policy: RetryPolicy {
            var policy = RetryPolicy()
            policy.maxAttempts = maxAttempts
            policy.baseDelay = .milliseconds(baseDelayMs)
            policy.maxDelay = .milliseconds(maxDelayMs)
            policy.deadline = .seconds(deadlineSeconds)
            return policy
        }
    }

    public struct Cache: Decodable, Sendable, Hashable {
        /// 0 turns the cache off.
        public var maxBytes = 8 << 20
        public var ttlSeconds = 86_400.0

        public init() {}

        /// The cache these settings describe; nil when `max_bytes` is 0.
        public func make(clock: any ResilienceClock = SystemResilienceClock()) -> EmbeddingCache? {
            maxBytes > 0 ? EmbeddingCache(maxBytes: maxBytes, ttl: .seconds(ttlSeconds), clock: clock) : nil
        }

        enum CodingKeys: String, CodingKey { case maxBytes = "max_bytes", ttlSeconds = "ttl_seconds" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&maxBytes, .maxBytes)
            try c.fill(&ttlSeconds, .ttlSeconds)
            guard maxBytes >= 0 else { throw ConfigError.invalid(CodingKeys.maxBytes.rawValue, "must not be negative", in: decoder) }
            guard ttlSeconds > 0 else { throw ConfigError.invalid(CodingKeys.ttlSeconds.rawValue, "must be positive", in: decoder) }
        }
    }

    public struct Validation: Decodable, Sendable, Hashable {
        public var minNorm = 1e-6
        /// Real embedding models give unit vectors or close; a norm far off means garbage.
        public var maxNorm = 1e4
        public var maxZeroFraction = 0.5

        public init() {}

        enum CodingKeys: String, CodingKey { case minNorm = "min_norm", maxNorm = "max_norm", maxZeroFraction = "max_zero_fraction" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&minNorm, .minNorm)
            try c.fill(&maxNorm, .maxNorm)
            try c.fill(&maxZeroFraction, .maxZeroFraction)
            guard minNorm >= 0, maxNorm > minNorm else { throw ConfigError.invalid(CodingKeys.maxNorm.rawValue, "must be more than min_norm", in: decoder) }
            guard (0...1).contains(maxZeroFraction) else {
                throw ConfigError.invalid(CodingKeys.maxZeroFraction.rawValue, "must be between 0 and 1", in: decoder)
            }
        }

        public var validator: VectorValidator {
            var validator = VectorValidator()
            validator.minNorm = Float(minNorm)
            validator.maxNorm = Float(maxNorm)
            validator.maxZeroFraction = maxZeroFraction
            return validator
        }
    }

    public var rateLimit = RateLimit()
    public var circuitBreaker = Breaker()
    public var retry = Retry()
    public var cache = Cache()
    public var validation = Validation()

    public init() {}

    enum CodingKeys: String, CodingKey {
        case rateLimit = "rate_limit", circuitBreaker = "circuit_breaker", retry, cache, validation
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rateLimit = try c.decodeIfPresent(RateLimit.self, forKey: .rateLimit) ?? RateLimit()
        circuitBreaker = try c.decodeIfPresent(Breaker.self, forKey: .circuitBreaker) ?? Breaker()
        retry = try c.decodeIfPresent(Retry.self, forKey: .retry) ?? Retry()
        cache = try c.decodeIfPresent(Cache.self, forKey: .cache) ?? Cache()
        validation = try c.decodeIfPresent(Validation.self, forKey: .validation) ?? Validation()
    }
}
