import EmbedStarCore
import Synchronization

/// A clock that moves only when told to. Tests of the rate limiter, circuit breaker, retries
/// and cache run without real waiting and can check when each call would have happened.
///
/// With `autoAdvance` (the default) a sleep moves the clock forward by what was asked, at once.
/// Without it a sleep waits until ``advance(by:)`` moves the clock past its end, so a test can
/// hold a sleeper and change the world meanwhile.
public final class ManualClock: ResilienceClock {
    private struct State {
        var now: Duration = .zero
        var slept: [Duration] = []
        var sleepers: [(until: Duration, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    public let autoAdvance: Bool

    public init(autoAdvance: Bool = true) {
        self.autoAdvance = autoAdvance
    }

    public func now() -> Duration { state.withLock { $0.now } }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        if autoAdvance {
            state.withLock {
                $0.slept.append(duration)
                if duration > .zero { $0.now += duration }
            }
            return
        }
        guard duration > .zero else { return }
        await withCheckedContinuation { continuation in
            state.withLock {
                $0.slept.append(duration)
                $0.sleepers.append(($0.now + duration, continuation))
            }
        }
    }

    /// Moves time forward, waking the sleepers whose time has come.
    public func advance(by duration: Duration) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.now += duration
            let now = state.now
            let due = state.sleepers.filter { $0.until <= now }.map(\.continuation)
            state.sleepers.removeAll { $0.until <= now }
            return due
        }
        for continuation in woken { continuation.resume() }
    }

    /// Every sleep asked for, in order.
    public var slept: [Duration] { state.withLock { $0.slept } }

    /// How many sleeps are waiting for the clock to move.
    public var sleeping: Int { state.withLock { $0.sleepers.count } }
}
