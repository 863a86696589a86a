@testable import SurrealClient
import Testing

/// The pool's line: callers wait while the pool is busy and get a slot as soon as one comes
/// free; they give up only when the pool is stuck (nothing came free for the whole timeout).
struct PoolTests {
    @Test func aLineThatMovesIsWaitedOutHoweverLongItTakes() async throws {
        let pool = ConnectionLimiter(capacity: 2, label: "test-moving")
        // 12 callers, 1 s each, two at a time: the last one waits about 5 s, well past the
        // pool's timeout of 3 s, yet a slot comes free every second (two seconds of slack for a
        // loaded machine, and a second for the ten late callers to get in line).
        try await withThrowingTaskGroup(of: Int.self) { group in
            for number in 0..<12 {
                group.addTask {
                    try await pool.withSlot(timeout: .seconds(3)) {
                        try await Task.sleep(for: .seconds(1))
                        return number
                    }
                }
            }
            var done: Set<Int> = []
            for try await number in group { done.insert(number) }
            #expect(done == Set(0..<12), "every caller got its slot")
        }
        #expect(await pool.waitCount == 10, "all but the first two waited in line")
    }

    @Test func aStuckPoolFailsTheWaiterWithARetryableError() async throws {
        let pool = ConnectionLimiter(capacity: 1, label: "test-stuck")
        let (release, holder) = AsyncStream.makeStream(of: Void.self)
        let held = Task { try await pool.withSlot(timeout: .seconds(60)) { for await _ in release {} } }
        while await !pool.isFull { await Task.yield() }  // the holder has its slot
        do {
            try await pool.withSlot(timeout: .milliseconds(300)) {}
            Issue.record("expected a pool timeout while the only slot is held")
        } catch let error as SurrealError {
            #expect(error.kind == .poolTimeout && error.isRetryable, "\(error)")
        }
        holder.finish()
        try await held.value
        // Once the slot is back, the next caller gets it at once.
        try await pool.withSlot(timeout: .milliseconds(300)) {}
    }
}
