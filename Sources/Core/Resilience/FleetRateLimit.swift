import Logging
import Metrics

/// Shares a provider account's rate limits (`resilience.rate_limit`, which are the account's,
/// not one instance's) between the instances using one store: each reports its use about once a
/// second (``RepoStore/shareRateLimit(_:)``) and takes `1 / n` of the limits, `n` being the
/// instances that asked for budget within the last ``activeFor`` (an idle instance stops taking
/// a share, so the busy ones get all of it); a `retry-after` or the headers' limits one instance
/// saw reach the others at their next exchange.
///
/// A new instance exchanges once before its workers start and, when others already use the
/// account, starts with nothing banked: it does not add a burst of its part on top of theirs.
public struct FleetRateLimit: Sendable {
    /// The account whose limits are shared (``RateLimitReport/account``).
    public var account: String
    /// This instance.
    public var owner: String
    /// How often it exchanges with the store.
    public var interval: Duration = .seconds(1)
    /// How long an instance counts as a user of the account after it last asked for budget.
    public var activeFor: Duration = .seconds(10)

    public init(account: String, owner: String) {
        self.account = account
        self.owner = owner
    }

    /// The account of `provider`'s `model` when none is configured: instances of one provider and
    /// model share limits; `resilience.rate_limit.account` names another grouping (two accounts,
    /// or one account for several models).
    public static func defaultAccount(provider: String, model: String) -> String {
        "\(provider)/\(model)"
    }

    /// One exchange: reports `limiter`'s use, applies the answer, and returns it.
    @discardableResult
    public func exchange(_ limiter: RateLimiter, store: any RepoStore, active: Bool? = nil) async throws -> RateLimitShare {
        var report = limiter.report(account: account, owner: owner, activeFor: activeFor)
        if let active { report.active = active }
        let share = try await store.shareRateLimit(report)
        limiter.apply(share)
        return share
    }

    /// The first exchange, before this instance sends anything: it counts itself in and, when
    /// others use the account already, starts with an empty bucket.
    public func join(_ limiter: RateLimiter, store: any RepoStore) async throws {
        let share = try await exchange(limiter, store: store, active: true)
        if share.others > 0 { limiter.drain() }
    }

    /// Exchanges every ``interval`` until cancelled (a failed exchange is logged and the last
    /// share kept), then reports this instance idle so the others take its part at once.
    public func run(_ limiter: RateLimiter, store: any RepoStore, provider: String, logger: Logger) async {
        let gauge = Gauge(label: MetricNames.rateLimitSharers, dimensions: [("provider", provider)])
        var failing = false
        while !Task.isCancelled {
            do {
                let share = try await exchange(limiter, store: store)
                gauge.record(share.others + 1)
                if failing { logger.info("sharing the provider's rate limits through the store again") }
                failing = false
            } catch is CancellationError {
                break
            } catch {
                if !failing {
                    logger.warning("could not share the provider's rate limits through the store; keeping the last share", metadata: [
                        "error": "\(error)",
                    ])
                }
                failing = true
            }
            do { try await Task.sleep(for: interval) } catch { break }
        }
        // Cancelled: a last report, outside the cancelled task, so it is not cut short.
        let leaving = Task { try? await exchange(limiter, store: store, active: false) }
        _ = await leaving.value
    }
}
