import Testing

/// Polls `condition` every `interval` until it holds or `timeout` passes: a wait for a condition,
/// never for a fixed time. Records an issue if the condition never held; returns whether it did.
/// A condition that starts a process wants a longer interval than one that reads memory.
@discardableResult
public func waitUntil(timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(10),
                      _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(timeout)")
            return false
        }
        try await Task.sleep(for: interval)
    }
    return true
}
