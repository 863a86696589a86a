import Foundation
import Synchronization

/// What the pipeline is doing, for liveness, readiness and `/health`. Updated by the workers,
/// read by the monitoring server; cheap enough to touch on every loop.
public final class PipelineActivity: Sendable {
    public struct Snapshot: Sendable {
        /// When a worker loop last went round, on the activity's clock (idle loops count: they
        /// prove the loop is alive).
        public var lastHeartbeat: Duration?
        /// Worker loop rounds so far: tests wait for rounds instead of sleeping to show that
        /// nothing happened while the workers went round.
        public var rounds: Int
        public var workers: Int
        public var busyWorkers: Int
        /// Wall time, for `/health`.
        public var lastSuccessfulWrite: Date?
        public var started: Bool
        public var totals: PipelineSummary
    }

    // A lock rather than an actor: workers update it without a suspension point.
    private let state: Mutex<Snapshot>
    /// Measures liveness (``sinceHeartbeat``).
    public let clock: any ResilienceClock

    public init(workers: Int = 0, clock: any ResilienceClock = SystemResilienceClock()) {
        self.clock = clock
        state = Mutex(Snapshot(lastHeartbeat: nil, rounds: 0, workers: workers, busyWorkers: 0, lastSuccessfulWrite: nil, started: false,
                               totals: PipelineSummary()))
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// How long since a worker loop last went round; nil before the workers started.
    public var sinceHeartbeat: Duration? {
        let snapshot = self.snapshot
        guard snapshot.started, let last = snapshot.lastHeartbeat else { return nil }
        return clock.now() - last
    }

    /// The workers the pipeline will run (before they start, for `/health`).
    func expect(workers: Int) { state.withLock { $0.workers = workers } }

    func started(workers: Int) {
        let now = clock.now()
        state.withLock {
            $0.started = true
            $0.workers = workers
            $0.lastHeartbeat = now
        }
    }

    func heartbeat() {
        let now = clock.now()
        state.withLock {
            $0.lastHeartbeat = now
            $0.rounds += 1
        }
    }

    /// Liveness only: a worker waits on a call that makes progress (a claim waiting out another
    /// instance's sweep). Not a loop round.
    func beat() {
        let now = clock.now()
        state.withLock { $0.lastHeartbeat = now }
    }

    func busy(_ delta: Int) { state.withLock { $0.busyWorkers += delta } }

    func finished(_ summary: PipelineSummary) {
        let now = clock.now()
        state.withLock {
            $0.totals.add(summary)
            if summary.embedded + summary.unchanged > 0 { $0.lastSuccessfulWrite = Date() }
            $0.lastHeartbeat = now
        }
    }
}
