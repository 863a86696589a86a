import Metrics

/// Bounds how many requests (HTTP) or connections (WebSocket) are in use at once; callers wait
/// in line up to a timeout. Reports in-use, waits and timeouts as metrics.
actor ConnectionLimiter {
    private let capacity: Int
    private var inUse = 0
    private var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID = 0
    private let inUseGauge: Gauge
    private let waits: Counter
    private let timeouts: Counter

    init(capacity: Int, label: String) {
        self.capacity = max(1, capacity)
        inUseGauge = Gauge(label: "surreal_pool_connections_in_use", dimensions: [("pool", label)])
        waits = Counter(label: "surreal_pool_waits_total", dimensions: [("pool", label)])
        timeouts = Counter(label: "surreal_pool_timeouts_total", dimensions: [("pool", label)])
        Gauge(label: "surreal_pool_size", dimensions: [("pool", label)]).record(self.capacity)
    }

    func acquire(timeout: Duration) async throws {
        if inUse < capacity {
            inUse += 1
            inUseGauge.record(inUse)
            return
        }
        waits.increment()
        nextID += 1
        let id = nextID
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiters.append((id, continuation))
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    func release() {
        if waiters.isEmpty {
            inUse -= 1
            inUseGauge.record(inUse)
        } else {
            // The slot passes straight to the next waiter.
            waiters.removeFirst().continuation.resume()
        }
    }

    private func expire(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        timeouts.increment()
        waiters.remove(at: index).continuation.resume(throwing: SurrealError(.poolTimeout, "no connection came free in time (pool of \(capacity))"))
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
