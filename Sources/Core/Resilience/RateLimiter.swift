import Foundation
import Synchronization

/// Requests-per-minute and tokens-per-minute budgets as token buckets, with explicit time so it
/// can be driven by a test clock. A reservation books capacity at once (the bucket may go into
/// debt) and says how long to wait before sending; `retry-after` pauses everything until then.
public struct RateLimitBudget: Sendable {
    public private(set) var requestsPerMinute: Double?
    public private(set) var tokensPerMinute: Double?
    private var requests: Double
    private var tokens: Double
    private var updated: Duration
    /// No request may be sent before this instant (a provider's `retry-after`).
    public private(set) var pausedUntil: Duration = .zero

    public init(requestsPerMinute: Int?, tokensPerMinute: Int?, now: Duration) {
        self.requestsPerMinute = requestsPerMinute.map(Double.init)
        self.tokensPerMinute = tokensPerMinute.map(Double.init)
        requests = self.requestsPerMinute ?? 0
        tokens = self.tokensPerMinute ?? 0
        updated = now
    }

    private mutating func refill(_ now: Duration) {
        let elapsed = max(0, (now - updated).seconds)
        updated = max(updated, now)
        if let rate = requestsPerMinute { requests = min(rate, requests + elapsed * rate / 60) }
        if let rate = tokensPerMinute { tokens = min(rate, tokens + elapsed * rate / 60) }
    }

    /// Books one request costing `cost` tokens; returns how long to wait before sending it.
    public mutating func reserve(cost: Int, now: Duration) -> Duration {
        refill(now)
        var wait = max(.zero, pausedUntil - now)
        if let rate = requestsPerMinute {
            requests -= 1
            if requests < 0 { wait = max(wait, .seconds(-requests * 60 / rate)) }
        }
        if let rate = tokensPerMinute {
            // A batch bigger than a minute's budget waits for a full bucket, not forever.
            tokens -= min(Double(cost), rate)
            if tokens < 0 { wait = max(wait, .seconds(-tokens * 60 / rate)) }
        }
        return wait
    }

    /// Whole requests the budget holds now (unlimited: `Int.max`), without booking any.
    public mutating func available(now: Duration) -> Int {
        refill(now)
        guard requestsPerMinute != nil else { return .max }
        return max(0, Int(requests.rounded(.down)))
    }

    /// Books `count` requests already made.
    public mutating func spend(_ count: Int, now: Duration) {
        refill(now)
        if requestsPerMinute != nil { requests -= Double(count) }
    }

    /// Books up to `limit` whole requests of what the budget holds now and returns how many
    /// (unlimited: `limit`). Taking before acting lets callers that run at once share the budget
    /// without overdrawing it; what goes unused is given back with ``refund(_:)``.
    public mutating func take(upTo limit: Int, now: Duration) -> Int {
        let count = min(limit, available(now: now))
        spend(count, now: now)
        return count
    }

    /// Gives back requests booked with ``take(upTo:now:)`` and not used.
    public mutating func refund(_ count: Int) {
        guard let rate = requestsPerMinute, count > 0 else { return }
        requests = min(rate, requests + Double(count))
    }

    /// The provider said to wait: nothing is sent before `now + delay`.
    public mutating func pause(for delay: Duration, now: Duration) {
        pausedUntil = max(pausedUntil, now + delay)
    }

    /// Adopts what the provider's `x-ratelimit-*` headers say: the limits when none are
    /// configured, the remaining budget, and a pause until the reset when nothing remains.
    public mutating func adapt(_ hint: RateLimitHint, now: Duration) {
        refill(now)
        if let limit = hint.requestsLimit, limit > 0 {
            if requestsPerMinute == nil { requests = Double(limit) }
            requestsPerMinute = min(requestsPerMinute ?? .infinity, Double(limit))
        }
        if let limit = hint.tokensLimit, limit > 0 {
            if tokensPerMinute == nil { tokens = Double(limit) }
            tokensPerMinute = min(tokensPerMinute ?? .infinity, Double(limit))
        }
        if let remaining = hint.requestsRemaining, requestsPerMinute != nil { requests = min(requests, Double(remaining)) }
        if let remaining = hint.tokensRemaining, tokensPerMinute != nil { tokens = min(tokens, Double(remaining)) }
        if hint.requestsRemaining == 0, let reset = hint.requestsReset { pause(for: reset, now: now) }
        if hint.tokensRemaining == 0, let reset = hint.tokensReset { pause(for: reset, now: now) }
    }
}

/// The clock the resilience parts read: real time in the service, a hand-moved one in tests.
public protocol ResilienceClock: Sendable {
    /// Time since an arbitrary fixed origin.
    func now() -> Duration
    func sleep(for duration: Duration) async throws
}

public struct SystemResilienceClock: ResilienceClock {
    private let origin = ContinuousClock.now

    public init() {}

    public func now() -> Duration { ContinuousClock.now - origin }

    public func sleep(for duration: Duration) async throws {
        if duration > .zero { try await Task.sleep(for: duration) }
    }
}

/// The rate limiter of one provider: consulted before every call, fed by the provider's answers.
public final class RateLimiter: Sendable {
    private let budget: Mutex<RateLimitBudget>
    private let clock: any ResilienceClock

    public init(requestsPerMinute: Int?, tokensPerMinute: Int?, clock: any ResilienceClock = SystemResilienceClock()) {
        self.clock = clock
        budget = Mutex(RateLimitBudget(requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, now: clock.now()))
    }

    /// Waits until a request of `cost` tokens may be sent. Returns how long it waited.
    @discardableResult
    public func acquire(cost: Int) async throws -> Duration {
        var wait = budget.withLock { $0.reserve(cost: cost, now: clock.now()) }
        var waited = Duration.zero
        while wait > .zero {
            try await clock.sleep(for: wait)
            waited += wait
            // A `retry-after` that came in while this call waited holds it too.
            wait = budget.withLock { max(.zero, $0.pausedUntil - clock.now()) }
        }
        return waited
    }

    public func pause(for delay: Duration) {
        budget.withLock { $0.pause(for: delay, now: clock.now()) }
    }

    public func observe(_ hint: RateLimitHint) {
        budget.withLock { $0.adapt(hint, now: clock.now()) }
    }

    /// How long until a request could be sent because of a `retry-after` (zero when none).
    public var pausedFor: Duration {
        let now = clock.now()
        return budget.withLock { max(.zero, $0.pausedUntil - now) }
    }
}
