import Foundation
import Synchronization

/// What the pipeline is doing, for liveness, readiness and `/health`. Updated by the workers,
/// read by the monitoring server; cheap enough to touch on every loop.
public final class PipelineActivity: Sendable {
    public struct Snapshot: Sendable {
        /// When a worker loop last went round (idle loops count: they prove the loop is alive).
        public var lastHeartbeat: Date?
        public var workers: Int
        public var busyWorkers: Int
        public var lastSuccessfulWrite: Date?
        public var started: Bool
        public var totals: PipelineSummary
    }

    // A lock rather than an actor: workers update it without a suspension point.
    private let state: Mutex<Snapshot>

    public init(workers: Int = 0) {
        state = Mutex(Snapshot(lastHeartbeat: nil, workers: workers, busyWorkers: 0, lastSuccessfulWrite: nil, started: false, totals: PipelineSummary()))
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// The workers the pipeline will run (before they start, for `/health`).
    func expect(workers: Int) { state.withLock { $0.workers = workers } }

    func started(workers: Int) {
        state.withLock {
            $0.started = true
            $0.workers = workers
            $0.lastHeartbeat = Date()
        }
    }

    func heartbeat() { state.withLock { $0.lastHeartbeat = Date() } }

    func busy(_ delta: Int) { state.withLock { $0.busyWorkers += delta } }

    func finished(_ summary: PipelineSummary) {
        state.withLock {
            $0.totals.add(summary)
            if summary.embedded + summary.unchanged > 0 { $0.lastSuccessfulWrite = Date() }
            $0.lastHeartbeat = Date()
        }
    }
}
