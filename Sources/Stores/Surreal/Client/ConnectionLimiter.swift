import Metrics

/// Bounds how many requests (HTTP) or connections (WebSocket) are in use at once; callers wait
/// in line. Reports in-use, waits and timeouts as metrics.
///
/// A caller gives up only when the pool is stuck: no slot came free for the whole timeout. A
/// long line that moves (the server answers, just not quickly: many callers, a loaded machine)
/// is waited out, since giving up there fails work the server would have done.
actor ConnectionLimiter {
    private let capacity: Int
    private var inUse = 0
    private var waiters: [(id: Int, since: ContinuousClock.Instant, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID = 0
    /// When a slot last came free (or the pool was made).
    private var lastRelease = ContinuousClock.now
    /// Callers that had to wait, over the pool's life (the `surreal_pool_waits_total` metric).
    private(set) var waitCount = 0
    var isFull: Bool { inUse >= capacity }
    private let inUseGauge: Gauge
    private let waits: Counter
    private let timeouts: Counter

    init(capacity: Int, label: String) {
        self.capacity = max(1, capacity)
        inUseGauge = Gauge(label: SurrealClientMetrics.connectionsInUse, dimensions: [("pool", label)])
        waits = Counter(label: SurrealClientMetrics.waits, dimensions: [("pool", label)])
        timeouts = Counter(label: SurrealClientMetrics.timeouts, dimensions: [("pool", label)])
        Gauge(label: SurrealClientMetrics.size, dimensions: [("pool", label)]).record(self.capacity)
    }

    func acquire(timeout: Duration) async throws {
        if inUse < capacity {
            inUse += 1
            inUseGauge.record(inUse)
            return
        }
        waits.increment()
        waitCount += 1
        nextID += 1
        let id = nextID
        let timer = Task { [weak self] in
            var wait = timeout
            while true {
                try await Task.sleep(for: wait)
                guard let self, let next = await self.expireIfStuck(id, timeout: timeout) else { return }
                wait = next
            }
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiters.append((id, .now, continuation))
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    func release() {
        lastRelease = .now
        if waiters.isEmpty {
            inUse -= 1
            inUseGauge.record(inUse)
        } else {
            // The slot passes straight to the next waiter.
            waiters.removeFirst().continuation.resume()
        }
    }

    /// Fails waiter `id` if no slot came free for `timeout` since it joined the line; otherwise
    /// returns how much longer to wait before asking again (nil: it is no longer waiting).
    private func expireIfStuck(_ id: Int, timeout: Duration) -> Duration? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        let idle = ContinuousClock.now - max(waiters[index].since, lastRelease)
        guard idle >= timeout else { return timeout - idle }
        timeouts.increment()
        waiters.remove(at: index).continuation.resume(throwing: SurrealError(
            .poolTimeout, "no connection came free for \(timeout) (pool of \(capacity), all in use)"))
        return nil
    }

    private func cancelWaiter(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    nonisolated func withSlot<T>(timeout: Duration, _ body: () async throws -> T) async throws -> T {
        try await acquire(timeout: timeout)
        do {
            let value = try await body()
            await release()
            return value
        } catch {
            await release()
            throw error
        }
    }
}
