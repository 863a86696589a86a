import Synchronization

/// Keeps this process's claims and its release of orphaned leases apart.
///
/// `releaseAll(owner:except:)` ends every lease of the owner except those in flight. A claim
/// that the store has committed but whose answer has not reached its worker yet is in no "in
/// flight" set, so a release running meanwhile would end a lease that a worker is about to
/// embed under (and another instance would claim the repo too). Claims run side by side; a
/// release waits until none runs, and new claims wait while a release waits or runs (so claims
/// that follow each other never starve it). A task waiting here and cancelled stops waiting.
final class ClaimGate: Sendable {
    private struct State {
        var claims = 0
        var releasing = false
        var releasesWaiting = 0
        var waiters = Waiters()
    }

    private let state = Mutex(State())

    /// Releases that wait to get in (for tests: a release is waiting behind a claim).
    var releasesWaiting: Int { state.withLock { $0.releasesWaiting } }

    func claim<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await enter { state in
            guard !state.releasing, state.releasesWaiting == 0 else { return false }
            state.claims += 1
            return true
        }
        defer { leave { $0.claims -= 1 } }
        return try await body()
    }

    func release<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        state.withLock { $0.releasesWaiting += 1 }
        do {
            try await enter { state in
                guard !state.releasing, state.claims == 0 else { return false }
                state.releasing = true
                state.releasesWaiting -= 1
                return true
            }
        } catch {
            leave { $0.releasesWaiting -= 1 }
            throw error
        }
        defer { leave { $0.releasing = false } }
        return try await body()
    }

    /// Waits until `admit` (under the lock) lets the caller in; throws when the task is cancelled.
    private func enter(_ admit: @escaping @Sendable (inout State) -> Bool) async throws {
        while !state.withLock({ admit(&$0) }) {
            try Task.checkCancellation()
            await Waiters.wait(
                reserve: { state.withLock { $0.waiters.reserve() } },
                // Parked only if still not admitted, checked under the lock that `leave` takes.
                park: { id, continuation in
                    state.withLock { current in
                        var probe = current
                        if admit(&probe) { return false }
                        return current.waiters.park(continuation, id: id)
                    }
                },
                remove: { id in self.state.withLock { $0.waiters.remove(id) } })
        }
    }

    private func leave(_ change: (inout State) -> Void) {
        let woken = state.withLock { current in
            change(&current)
            return current.waiters.removeAll()
        }
        for continuation in woken { continuation.resume() }
    }
}
