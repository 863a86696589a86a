/// `body`'s result, or nil when it has none within `limit` (then `body` is cancelled).
///
/// For waits that must end whatever the other side does: a health check of a backend that
/// hangs, the release of claims at shutdown.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
