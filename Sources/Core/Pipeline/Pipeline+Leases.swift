import Foundation
import Synchronization

/// Leases of the batches in flight: kept alive while a batch runs, handed back when it fails.
extension Pipeline {
    /// Marks repos as in flight in this process, or no longer (``inFlight``).
    func track(_ ids: [RepoID], working: Bool) {
        inFlight.withLock { set in
            if working { set.formUnion(ids) } else { set.subtract(ids) }
        }
    }

    /// Keeps the leases on a batch in flight alive: renewed every third of `lease_seconds`, so a
    /// slow provider or a long rate-limit wait never lets another instance claim the batch too.
    /// Each renewal runs on its own: one that hangs (a dead connection, up to its request
    /// timeout) does not hold back the next one a third of a lease later (at most two at once). A lease lost anyway (the
    /// store was unreachable for longer) makes the write refused.
    func renewLeases(_ ids: [RepoID]) -> Task<Void, Never> {
        let store = self.store, owner = instanceID, logger = self.logger
        let lease = Duration.seconds(configuration.leaseSeconds)
        // Wall-clock time, not the provider's clock: leases expire by the store's clock.
        return Task {
            var renewals: [Task<Void, Never>] = []
            let running = RenewalsRunning()
            while !Task.isCancelled {
                try? await Task.sleep(for: lease / 3)
                if Task.isCancelled { break }
                // A second renewal while one hangs, not more: each holds a connection until its
                // request timeout, and a pile of them would starve the batches' writes.
                guard running.start() else { continue }
                renewals.append(Task {
                    defer { running.end() }
                    do {
                        let held = try await store.renew(ids, owner: owner, leaseDuration: lease)
                        if held.count < ids.count {
                            logger.warning("leases of a batch in flight were lost; their writes will be refused", metadata: [
                                "lost": "\(ids.count - held.count)",
                            ])
                        }
                    } catch {
                        logger.debug("lease renewal failed; trying again", metadata: ["error": "\(error)"])
                    }
                })
            }
            for renewal in renewals { renewal.cancel() }
        }
    }

    /// Beats the liveness heartbeat every second until the returned task is cancelled, for at
    /// most `limit` (a claim stuck longer than any sweep takes is not alive).
    func heartbeatWhile(limit: Duration = .seconds(900)) -> Task<Void, Never> {
        let activity = self.activity
        let end = ContinuousClock.now + limit
        return Task {
            while !Task.isCancelled, ContinuousClock.now < end {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { return }
                activity.beat()
            }
        }
    }

    /// Ends this instance's leases on `ids` even when the calling task was cancelled (the
    /// shutdown deadline passed): stores refuse work in a cancelled task, so the release runs in
    /// a task of its own, bounded by `timeout`.
    func releaseOutsideCancellation(_ ids: [RepoID], timeout: Duration = .seconds(5)) async {
        let store = self.store, owner = instanceID, logger = self.logger
        await Task.detached {
            let released = await withDeadline(timeout) {
                do {
                    try await store.release(ids, owner: owner)
                    return true
                } catch {
                    logger.warning("could not release claims; they are claimed again when their leases expire", metadata: [
                        "count": "\(ids.count)", "error": "\(error)",
                    ])
                    return false
                }
            } ?? false
            if !released {
                logger.debug("release of unfinished claims did not complete", metadata: ["count": "\(ids.count)"])
            }
        }.value
    }
}

/// How many renewals of one batch are in flight (at most two).
private final class RenewalsRunning: Sendable {
    private let count = Mutex(0)

    func start() -> Bool {
        count.withLock { count in
            guard count < 2 else { return false }
            count += 1
            return true
        }
    }

    func end() { count.withLock { $0 -= 1 } }
}
