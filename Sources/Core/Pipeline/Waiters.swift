/// Tasks parked until an event, kept under their owner's lock: ``StopSignal`` parks until it is
/// triggered, ``IdleWatch`` until the watching worker steps down.
struct Waiters: Sendable {
    private var parked: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextID = 0

    mutating func reserve() -> Int {
        nextID += 1
        return nextID
    }

    /// Keeps `continuation` under `id`; false (the caller resumes it at once) when the task is
    /// already cancelled. Called under the owner's lock, as is the cancellation's `remove`.
    mutating func park(_ continuation: CheckedContinuation<Void, Never>, id: Int) -> Bool {
        if Task.isCancelled { return false }
        parked[id] = continuation
        return true
    }

    mutating func remove(_ id: Int) -> CheckedContinuation<Void, Never>? {
        parked.removeValue(forKey: id)
    }

    mutating func removeAll() -> [CheckedContinuation<Void, Never>] {
        defer { parked = [:] }
        return Array(parked.values)
    }

    /// Parks the calling task until it is resumed or cancelled. `park` answers false when the
    /// event already happened (or the task was cancelled); each closure takes the owner's lock.
    static func wait(
        reserve: () -> Int,
        park: (Int, CheckedContinuation<Void, Never>) -> Bool,
        remove: @escaping @Sendable (Int) -> CheckedContinuation<Void, Never>?
    ) async {
        let id = reserve()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if !park(id, continuation) { continuation.resume() }
            }
        } onCancel: {
            remove(id)?.resume()
        }
    }
}
