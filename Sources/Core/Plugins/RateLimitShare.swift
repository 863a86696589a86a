import Foundation

/// What one instance tells the store about its use of a provider account's rate limits
/// (``RepoStore/shareRateLimit(_:)``), about once a second while it embeds.
public struct RateLimitReport: Sendable, Hashable {
    /// The provider account whose limits are shared (`resilience.rate_limit.account`, or the
    /// provider's name and model): instances naming the same account share its limits.
    public var account: String
    /// The reporting instance.
    public var owner: String
    /// It sends requests now (or wants to): counted among the account's users for `activeFor`
    /// from now. An idle instance reports `false` and stops taking a share.
    public var active: Bool
    public var activeFor: Duration
    /// A provider's `retry-after` (or its rate-limit headers' reset) this instance is waiting
    /// out: every instance of the account waits until then too. Zero when none.
    public var pausedFor: Duration
    /// The account's limits as the provider's `x-ratelimit-limit-*` headers said, when this
    /// instance saw them.
    public var requestsLimit: Int?
    public var tokensLimit: Int?

    public init(account: String, owner: String, active: Bool, activeFor: Duration = .seconds(10), pausedFor: Duration = .zero,
                requestsLimit: Int? = nil, tokensLimit: Int? = nil) {
        self.account = account
        self.owner = owner
        self.active = active
        self.activeFor = activeFor
        self.pausedFor = pausedFor
        self.requestsLimit = requestsLimit
        self.tokensLimit = tokensLimit
    }
}

/// The store's answer: how the account's limits are shared now.
public struct RateLimitShare: Sendable, Hashable {
    /// Other instances using the account now (active, their report not run out): this one takes
    /// `1 / (others + 1)` of the limits.
    public var others: Int
    /// The longest pause any instance of the account reported, still to run (zero when none).
    public var pausedFor: Duration
    /// The account's limits from the provider's headers, as the last instance that saw them
    /// reported (nil when none did).
    public var requestsLimit: Int?
    public var tokensLimit: Int?

    public init(others: Int, pausedFor: Duration = .zero, requestsLimit: Int? = nil, tokensLimit: Int? = nil) {
        self.others = others
        self.pausedFor = pausedFor
        self.requestsLimit = requestsLimit
        self.tokensLimit = tokensLimit
    }

    /// A store that shares nothing: the instance is alone with what it reported.
    public static func alone(_ report: RateLimitReport) -> RateLimitShare {
        RateLimitShare(others: 0, pausedFor: report.pausedFor, requestsLimit: report.requestsLimit, tokensLimit: report.tokensLimit)
    }
}

/// One account's shared state as a store can keep it (the Mock store in memory, SQLite as a
/// JSON row): who uses the account until when, the fleet's pause, the learned limits. Kept
/// under the store's lock or in one transaction, so two reports never lose each other.
public struct RateLimitLedger: Codable, Sendable, Hashable {
    /// Instances counted as users of the account, until when.
    public var activeUntil: [String: Date] = [:]
    public var pausedUntil: Date?
    public var requestsLimit: Int?
    public var tokensLimit: Int?

    public init() {}

    /// Records `report` at `now` (the store's clock) and answers the share
    /// (``RepoStore/shareRateLimit(_:)``).
    public mutating func record(_ report: RateLimitReport, now: Date) -> RateLimitShare {
        activeUntil = activeUntil.filter { $0.value > now }
        activeUntil[report.owner] = report.active ? now.addingTimeInterval(report.activeFor.seconds) : nil
        if report.pausedFor > .zero {
            pausedUntil = max(pausedUntil ?? now, now.addingTimeInterval(report.pausedFor.seconds))
        }
        if let limit = report.requestsLimit { requestsLimit = limit }
        if let limit = report.tokensLimit { tokensLimit = limit }
        let paused = pausedUntil.map { max(0, $0.timeIntervalSince(now)) } ?? 0
        if paused == 0 { pausedUntil = nil }
        return RateLimitShare(others: activeUntil.keys.filter { $0 != report.owner }.count, pausedFor: .seconds(paused),
                              requestsLimit: requestsLimit, tokensLimit: tokensLimit)
    }
}
