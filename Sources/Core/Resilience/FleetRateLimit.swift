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

    /// One exchange: reports `limiter`'s use (or `active`, when given), applies the answer, and
    /// returns it.
    @discardableResult
    public func exchange(_ limiter: RateLimiter, store: any RepoStore, active: Bool? = nil) async throws -> RateLimitShare {
        var report = limiter.report(account: account, owner: owner, activeFor: activeFor)
        if let active { report.active = active }
        let share = try await store.shareRateLimit(report)
        limiter.apply(share, reportedActive: report.active)
        return share
    }

    /// The first exchange, before this instance sends anything: it counts itself in (as asking
    /// for budget now) and, when others use the account already, starts with an empty bucket.
    /// Gives up after `timeout` (the store is slow or down: the instance starts alone).
    public func join(_ limiter: RateLimiter, store: any RepoStore, timeout: Duration = .seconds(5)) async throws {
        limiter.markDemand()
        let result = await Self.atMost(timeout) { try await exchange(limiter, store: store) }
        switch result {
        case .some(.success): return
        case .some(.failure(let error)): throw error
        case .none: throw FleetRateLimitTimeout(seconds: timeout.seconds)
        }
    }

    /// Exchanges every ``interval`` until cancelled (a failed exchange is logged and the last
    /// share kept), then reports this instance idle so the others take its part at once (given
    /// two seconds: a slow store does not hold the shutdown, and the others stop counting this
    /// instance when its last report runs out anyway).
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
        _ = await Self.atMost(.seconds(2)) { try await exchange(limiter, store: store, active: false) }
        gauge.record(0)
    }

    /// Runs `work` in a task of its own and waits for it at most `limit`: its result, or nil
    /// when the time ran out first (the work then goes on alone, unawaited, and is cancelled).
    static func atMost<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async -> Result<T, any Error>? {
        let (stream, continuation) = AsyncStream<Result<T, any Error>?>.makeStream()
        let worker = Task {
            do { continuation.yield(.success(try await work())) } catch { continuation.yield(.failure(error)) }
            continuation.finish()
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            continuation.yield(nil)
            continuation.finish()
        }
        var first: Result<T, any Error>?? = nil
        for await value in stream {
            first = value
            break
        }
        timer.cancel()
        if first.flatMap({ $0 }) == nil { worker.cancel() }
        return first.flatMap { $0 }
    }
}

/// The store did not answer the first exchange in time.
public struct FleetRateLimitTimeout: Error, CustomStringConvertible {
    public var seconds: Double
    public var description: String { "the store did not answer within \(seconds) s" }
}
