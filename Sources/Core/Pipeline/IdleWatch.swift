import Synchronization

/// While the queue is empty, one worker of the process (the watcher) looks for work every poll
/// interval; the others wait without asking the store until it finds some. So a short poll
/// interval costs one claim per interval per instance, not one per worker.
///
/// A worker becomes the watcher when none is watching; it stays one while its claims come back
/// empty and steps down when a claim finds work or fails, which lets every waiting worker claim
/// again at once.
final class IdleWatch: Sendable {
    private struct State {
        var watching = false
        var waiters = Waiters()
    }

    private let state = Mutex(State())

    /// Makes the caller the watcher when no one is watching; true when it is the watcher now.
    func becomeWatcher() -> Bool {
        state.withLock { state in
            if state.watching { return false }
            state.watching = true
            return true
        }
    }

    /// The watcher found work (or hit an error): it stops watching and every waiter resumes.
    func stepDown() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.watching = false
            return state.waiters.removeAll()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the watcher steps down, `stop` triggers or the task is cancelled; returns at
    /// once when no one is watching.
    func waitForWork(stop: StopSignal) async {
        await stop.wait { await self.waitForStepDown() }
    }

    private func waitForStepDown() async {
        await Waiters.wait(
            reserve: { state.withLock { $0.waiters.reserve() } },
            park: { id, continuation in state.withLock { $0.watching && $0.waiters.park(continuation, id: id) } },
            remove: { id in self.state.withLock { $0.waiters.remove(id) } })
    }
}
