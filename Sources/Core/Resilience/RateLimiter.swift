import Foundation
import Synchronization

/// Requests-per-minute and tokens-per-minute budgets as token buckets, with explicit time so it
/// can be driven by a test clock. A reservation books capacity at once (the bucket may go into
/// debt) and says how long to wait before sending; `retry-after` pauses everything until then.
public struct RateLimitBudget: Sendable {
    /// The limits configured (`resilience.rate_limit`): the account's.
    public let configuredRequestsPerMinute: Double?
    public let configuredTokensPerMinute: Double?
    /// The account's limits as the provider's headers last said (a later answer replaces an
    /// earlier one: an account's limits can rise).
    public private(set) var learnedRequestsPerMinute: Double?
    public private(set) var learnedTokensPerMinute: Double?
    /// The account's limits: the lower of the configured and the learned.
    public var accountRequestsPerMinute: Double? { Self.lower(configuredRequestsPerMinute, learnedRequestsPerMinute) }
    public var accountTokensPerMinute: Double? { Self.lower(configuredTokensPerMinute, learnedTokensPerMinute) }
    /// How many instances share the account's limits (this one included): each takes an equal
    /// part (``share(among:now:)``).
    public private(set) var sharers = 1
    /// This instance's part of the account's requests per minute.
    public var requestsPerMinute: Double? { accountRequestsPerMinute.map { $0 / Double(sharers) } }
    public var tokensPerMinute: Double? { accountTokensPerMinute.map { $0 / Double(sharers) } }
    private var requests: Double
    private var tokens: Double
    private var updated: Duration
    /// No request may be sent before this instant: the later of ``ownPausedUntil`` and a pause
    /// another instance of the account reported (``FleetRateLimit``).
    public var pausedUntil: Duration { max(ownPausedUntil, fleetPausedUntil) }
    /// This instance's own pause: a provider's `retry-after`, or its headers' reset when nothing
    /// remains. Only this one is reported to the others (a pause taken from them and reported
    /// back would come back later each time).
    public private(set) var ownPausedUntil: Duration = .zero
    private var fleetPausedUntil: Duration = .zero

    public init(requestsPerMinute: Int?, tokensPerMinute: Int?, now: Duration) {
        configuredRequestsPerMinute = requestsPerMinute.map(Double.init)
        configuredTokensPerMinute = tokensPerMinute.map(Double.init)
        requests = configuredRequestsPerMinute ?? 0
        tokens = configuredTokensPerMinute ?? 0
        updated = now
    }

    private static func lower(_ a: Double?, _ b: Double?) -> Double? {
        switch (a, b) {
        case let (a?, b?): min(a, b)
        case let (a?, nil): a
        case let (nil, b): b
        }
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
            // A batch bigger than the account's minute waits for a full bucket, not forever.
            tokens -= min(Double(cost), accountTokensPerMinute ?? rate)
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
        ownPausedUntil = max(ownPausedUntil, now + delay)
    }

    /// Another instance of the account was told to wait: nothing is sent before `now + delay`
    /// either, but this pause is not reported on.
    public mutating func followFleetPause(for delay: Duration, now: Duration) {
        fleetPausedUntil = max(fleetPausedUntil, now + delay)
    }

    /// Adopts what the provider's `x-ratelimit-*` headers say (the account's): the limits when
    /// none are configured (or lower ones), this instance's part of the remaining budget, and a
    /// pause until the reset when nothing remains.
    public mutating func adapt(_ hint: RateLimitHint, now: Duration) {
        refill(now)
        let share = Double(sharers)
        if let limit = hint.requestsLimit, limit > 0 { learn(requests: Double(limit)) }
        if let limit = hint.tokensLimit, limit > 0 { learn(tokens: Double(limit)) }
        // What remains is the account's: this instance's part of it.
        if let remaining = hint.requestsRemaining, requestsPerMinute != nil { requests = min(requests, Double(remaining) / share) }
        if let remaining = hint.tokensRemaining, tokensPerMinute != nil { tokens = min(tokens, Double(remaining) / share) }
        if hint.requestsRemaining == 0, let reset = hint.requestsReset { pause(for: reset, now: now) }
        if hint.tokensRemaining == 0, let reset = hint.tokensReset { pause(for: reset, now: now) }
    }

    /// The account's limits as the headers say now (this instance's or another's): replace what
    /// was learned before. A bucket that had no limit starts full at the new rate; one that had
    /// keeps what it holds, up to a minute of the new rate.
    public mutating func learn(requests limit: Double? = nil, tokens tokenLimit: Double? = nil) {
        if let limit {
            let unlimited = requestsPerMinute == nil
            learnedRequestsPerMinute = limit
            if let rate = requestsPerMinute { requests = unlimited ? rate : min(requests, rate) }
        }
        if let tokenLimit {
            let unlimited = tokensPerMinute == nil
            learnedTokensPerMinute = tokenLimit
            if let rate = tokensPerMinute { tokens = unlimited ? rate : min(tokens, rate) }
        }
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
        /// When a call last asked for budget (or the instance joined the account's users).
        var lastAsked: Duration?
        /// What the last report to the store said: active or not.
        var reportedActive = false
        /// The account's limits as the provider's headers last said, and when.
        var requestsLimit: Int?
        var tokensLimit: Int?
        var limitsSeen: Duration?
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
        let now = clock.now()
        demand.withLock {
            guard hint.requestsLimit ?? 0 > 0 || hint.tokensLimit ?? 0 > 0 else { return }
            if let limit = hint.requestsLimit, limit > 0 { $0.requestsLimit = limit }
            if let limit = hint.tokensLimit, limit > 0 { $0.tokensLimit = limit }
            $0.limitsSeen = now
        }
        budget.withLock { $0.adapt(hint, now: now) }
    }

    /// How long until a request could be sent because of a `retry-after` (zero when none).
    public var pausedFor: Duration {
        let now = clock.now()
        return budget.withLock { max(.zero, $0.pausedUntil - now) }
    }

    /// This instance's part of the account's requests per minute (nil: unlimited).
    public var requestsPerMinute: Double? { budget.withLock { $0.requestsPerMinute } }

    /// What this limiter tells the other instances of `account` (``RepoStore/shareRateLimit(_:)``):
    /// active when a call asked for budget within `activeFor` or waits now, its own pause (not
    /// one taken from the others), and the limits the provider's headers said, with their age.
    public func report(account: String, owner: String, activeFor: Duration) -> RateLimitReport {
        let now = clock.now()
        let seen = demand.withLock { $0 }
        let active = seen.waiting > 0 || seen.lastAsked.map { now - $0 < activeFor } ?? false
        let ownPause = budget.withLock { max(.zero, $0.ownPausedUntil - now) }
        return RateLimitReport(account: account, owner: owner, active: active, activeFor: activeFor, pausedFor: ownPause,
                               requestsLimit: seen.requestsLimit, tokensLimit: seen.tokensLimit,
                               limitsAge: seen.limitsSeen.map { now - $0 } ?? .zero)
    }

    /// Counts this instance as asking for budget now (joining the account's users before its
    /// first request).
    public func markDemand() {
        let now = clock.now()
        demand.withLock { $0.lastAsked = now }
    }

    /// Takes the share the store answered for a report that said `active`: this instance's part
    /// of the limits, the fleet's pause, and the account's limits the freshest headers said. An
    /// instance that becomes active (joining, or back from idle) while others use the account
    /// starts with nothing banked: it adds no burst of its part on top of theirs.
    public func apply(_ share: RateLimitShare, reportedActive active: Bool) {
        let now = clock.now()
        let rejoining = demand.withLock { demand in
            defer { demand.reportedActive = active }
            return active && !demand.reportedActive
        }
        budget.withLock { budget in
            budget.share(among: share.others + 1, now: now)
            budget.learn(requests: share.requestsLimit.map(Double.init), tokens: share.tokensLimit.map(Double.init))
            if share.pausedFor > .zero { budget.followFleetPause(for: share.pausedFor, now: now) }
            if rejoining && share.others > 0 { budget.drain(now: now) }
        }
    }
}
