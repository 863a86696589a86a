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
    /// A provider's `retry-after` (or its rate-limit headers' reset) this instance itself is
    /// waiting out (not one it took from the others): every instance of the account waits until
    /// then too. Zero when none.
    public var pausedFor: Duration
    /// The account's limits as the provider's `x-ratelimit-limit-*` headers said, when this
    /// instance saw them, and how long ago (the freshest of the account's reports wins).
    public var requestsLimit: Int?
    public var tokensLimit: Int?
    public var limitsAge: Duration

    public init(account: String, owner: String, active: Bool, activeFor: Duration = .seconds(10), pausedFor: Duration = .zero,
                requestsLimit: Int? = nil, tokensLimit: Int? = nil, limitsAge: Duration = .zero) {
        self.account = account
        self.owner = owner
        self.active = active
        self.activeFor = activeFor
        self.pausedFor = pausedFor
        self.requestsLimit = requestsLimit
        self.tokensLimit = tokensLimit
        self.limitsAge = limitsAge
    }
}

/// The store's answer: how the account's limits are shared now.
public struct RateLimitShare: Sendable, Hashable {
    /// Other instances using the account now (active, their report not run out): this one takes
    /// `1 / (others + 1)` of the limits.
    public var others: Int
    /// The longest pause any instance of the account reported (this one included), still to
    /// run (zero when none).
    public var pausedFor: Duration
    /// The account's limits from the provider's headers, as the instance that saw them last
    /// reported (nil when none did, within the last hour).
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
/// JSON row): each instance's last report, on the store's clock. Kept under the store's lock or
/// in one transaction, so two reports never lose each other.
public struct RateLimitLedger: Codable, Sendable, Hashable {
    public struct Member: Codable, Sendable, Hashable {
        public var seenAt: Date
        public var activeUntil: Date
        public var pausedUntil: Date?
        public var requestsLimit: Int?
        public var tokensLimit: Int?
        /// When the headers said those limits.
        public var limitsAt: Date?
    }

    /// The instances that reported within the last ``forgetAfter``, by owner.
    public var members: [String: Member] = [:]
    /// An instance silent this long is forgotten (with the limits it learned).
    public static let forgetAfter: TimeInterval = 3_600

    public init() {}

    /// Records `report` at `now` (the store's clock) and answers the share
    /// (``RepoStore/shareRateLimit(_:)``).
    public mutating func record(_ report: RateLimitReport, now: Date) -> RateLimitShare {
        members = members.filter { now.timeIntervalSince($0.value.seenAt) < Self.forgetAfter }
        var member = members[report.owner] ?? Member(seenAt: now, activeUntil: now)
        member.seenAt = now
        member.activeUntil = report.active ? now.addingTimeInterval(report.activeFor.seconds) : now
        member.pausedUntil = report.pausedFor > .zero ? now.addingTimeInterval(report.pausedFor.seconds) : nil
        if report.requestsLimit != nil || report.tokensLimit != nil {
            member.requestsLimit = report.requestsLimit
            member.tokensLimit = report.tokensLimit
            member.limitsAt = now.addingTimeInterval(-report.limitsAge.seconds)
        }
        members[report.owner] = member
        let paused = members.values.compactMap(\.pausedUntil).max().map { max(0, $0.timeIntervalSince(now)) } ?? 0
        let freshest = members.values.filter { $0.limitsAt != nil }.max { $0.limitsAt! < $1.limitsAt! }
        return RateLimitShare(others: members.filter { $0.key != report.owner && $0.value.activeUntil > now }.count,
                              pausedFor: .milliseconds(Int64(paused * 1000)),
                              requestsLimit: freshest?.requestsLimit, tokensLimit: freshest?.tokensLimit)
    }
}
