import Foundation
import Synchronization

/// Requests-per-minute and tokens-per-minute budgets as token buckets, with explicit time so it
/// can be driven by a test clock. A reservation books capacity at once (the bucket may go into
/// debt) and says how long to wait before sending; `retry-after` pauses everything until then.
public struct RateLimitBudget: Sendable {
    /// The account's limits: configured, or learned from the provider's headers.
    public private(set) var accountRequestsPerMinute: Double?
    public private(set) var accountTokensPerMinute: Double?
    /// How many instances share the account's limits (this one included): each takes an equal
    /// part (``share(among:now:)``).
    public private(set) var sharers = 1
    /// This instance's part of the account's requests per minute.
    public var requestsPerMinute: Double? { accountRequestsPerMinute.map { $0 / Double(sharers) } }
    public var tokensPerMinute: Double? { accountTokensPerMinute.map { $0 / Double(sharers) } }
    private var requests: Double
    private var tokens: Double
    private var updated: Duration
    /// No request may be sent before this instant (a provider's `retry-after`).
    public private(set) var pausedUntil: Duration = .zero

    public init(requestsPerMinute: Int?, tokensPerMinute: Int?, now: Duration) {
        accountRequestsPerMinute = requestsPerMinute.map(Double.init)
        accountTokensPerMinute = tokensPerMinute.map(Double.init)
        requests = accountRequestsPerMinute ?? 0
        tokens = accountTokensPerMinute ?? 0
        updated = now
    }

    /// `count` instances share the account's limits from now: this one's rates become
    /// `1 / count` of them, and what its buckets hold above a minute of the new rate is dropped.
    public mutating func share(among count: Int, now: Duration) {
        refill(now)
        sharers = max(1, count)
        if let rate = requestsPerMinute { requests = min(requests, rate) }
        if let rate = tokensPerMinute { tokens = min(tokens, rate) }
    }

    /// Empties both buckets (they refill with time, at this instance's rates).
    public mutating func drain(now: Duration) {
        refill(now)
        if requestsPerMinute != nil { requests = min(requests, 0) }
        if tokensPerMinute != nil { tokens = min(tokens, 0) }
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

    /// Adopts what the provider's `x-ratelimit-*` headers say (the account's): the limits when
    /// none are configured (or lower ones), this instance's part of the remaining budget, and a
    /// pause until the reset when nothing remains.
    public mutating func adapt(_ hint: RateLimitHint, now: Duration) {
        refill(now)
        let share = Double(sharers)
        if let limit = hint.requestsLimit, limit > 0 {
            if accountRequestsPerMinute == nil { requests = Double(limit) / share }
            accountRequestsPerMinute = min(accountRequestsPerMinute ?? .infinity, Double(limit))
            requests = min(requests, Double(limit) / share)
        }
        if let limit = hint.tokensLimit, limit > 0 {
            if accountTokensPerMinute == nil { tokens = Double(limit) / share }
            accountTokensPerMinute = min(accountTokensPerMinute ?? .infinity, Double(limit))
            tokens = min(tokens, Double(limit) / share)
        }
        // What remains is the account's: this instance's part of it.
        if let remaining = hint.requestsRemaining, requestsPerMinute != nil { requests = min(requests, Double(remaining) / share) }
        if let remaining = hint.tokensRemaining, tokensPerMinute != nil { tokens = min(tokens, Double(remaining) / share) }
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

/// The rate limiter of one provider: consulted before every call, fed by the provider's answers,
/// and, when instances share the provider account, by what the others report
/// (``FleetRateLimit``).
public final class RateLimiter: Sendable {
    private struct Demand {
        /// Calls waiting in ``RateLimiter/acquire(cost:)`` now.
        var waiting = 0
        /// When a call last asked for budget.
        var lastAsked: Duration?
        /// The account's limits as the provider's headers last said.
        var requestsLimit: Int?
        var tokensLimit: Int?
    }

    private let budget: Mutex<RateLimitBudget>
    private let demand = Mutex(Demand())
    private let clock: any ResilienceClock

    public init(requestsPerMinute: Int?, tokensPerMinute: Int?, clock: any ResilienceClock = SystemResilienceClock()) {
        self.clock = clock
        budget = Mutex(RateLimitBudget(requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, now: clock.now()))
    }

    /// Waits until a request of `cost` tokens may be sent. Returns how long it waited.
    @discardableResult
    public func acquire(cost: Int) async throws -> Duration {
        demand.withLock {
            $0.waiting += 1
            $0.lastAsked = clock.now()
        }
        defer { demand.withLock { $0.waiting -= 1 } }
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
        demand.withLock {
            if let limit = hint.requestsLimit, limit > 0 { $0.requestsLimit = limit }
            if let limit = hint.tokensLimit, limit > 0 { $0.tokensLimit = limit }
        }
        budget.withLock { $0.adapt(hint, now: clock.now()) }
    }

    /// Spends what the bucket holds now (an instance joining others that use the account).
    public func drain() {
        budget.withLock { $0.drain(now: clock.now()) }
    }

    /// How long until a request could be sent because of a `retry-after` (zero when none).
    public var pausedFor: Duration {
        let now = clock.now()
        return budget.withLock { max(.zero, $0.pausedUntil - now) }
    }

    /// This instance's part of the account's requests per minute (nil: unlimited).
    public var requestsPerMinute: Double? { budget.withLock { $0.requestsPerMinute } }

    /// What this limiter tells the other instances of `account` (``RepoStore/shareRateLimit(_:)``):
    /// active when a call asked for budget within `activeFor` or waits now, its pause, and the
    /// limits the provider's headers said.
    public func report(account: String, owner: String, activeFor: Duration) -> RateLimitReport {
        let now = clock.now()
        let seen = demand.withLock { $0 }
        let active = seen.waiting > 0 || seen.lastAsked.map { now - $0 < activeFor } ?? false
        return RateLimitReport(account: account, owner: owner, active: active, activeFor: activeFor, pausedFor: pausedFor,
                               requestsLimit: seen.requestsLimit, tokensLimit: seen.tokensLimit)
    }

    /// Takes the share the store answered: this instance's part of the limits, the fleet's
    /// pause, and the limits another instance learned from the headers.
    public func apply(_ share: RateLimitShare) {
        let now = clock.now()
        budget.withLock { budget in
            var hint = RateLimitHint(provider: "")
            hint.requestsLimit = share.requestsLimit
            hint.tokensLimit = share.tokensLimit
            budget.share(among: share.others + 1, now: now)
            if hint.requestsLimit != nil || hint.tokensLimit != nil { budget.adapt(hint, now: now) }
            if share.pausedFor > .zero { budget.pause(for: share.pausedFor, now: now) }
        }
    }
}
