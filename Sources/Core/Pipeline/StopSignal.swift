import Synchronization

/// Tells long-running loops to stop taking new work, and wakes them from idle waits at once.
/// Triggering it does not cancel work in flight: that is what makes shutdown graceful.
public final class StopSignal: Sendable {
    private struct State {
        var stopped = false
        var waiters = Waiters()
    }

    // A Mutex, not an actor: `isStopped` is read on hot paths without a suspension point.
    private let state = Mutex(State())

    public init() {}

    public var isStopped: Bool { state.withLock { $0.stopped } }

    public func trigger() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            return state.waiters.removeAll()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Sleeps for `duration`, returning early when stopped or cancelled.
    public func sleep(for duration: Duration) async {
        if duration <= .zero { return }
        await wait { try? await Task.sleep(for: duration) }
    }

    /// Waits for `body` to return, or until stopped (then `body` is cancelled).
    func wait(for body: @escaping @Sendable () async -> Void) async {
        if isStopped { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask(operation: body)
            group.addTask { await self.waitUntilStopped() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once stopped, or when the calling task is cancelled.
    public func waitUntilStopped() async {
        await Waiters.wait(
            reserve: { state.withLock { $0.waiters.reserve() } },
            park: { id, continuation in state.withLock { !$0.stopped && $0.waiters.park(continuation, id: id) } },
            remove: { id in self.state.withLock { $0.waiters.remove(id) } })
    }
}
