import EmbedStarCore
import Synchronization

/// A clock that moves only when told to, or by exactly what is slept: tests of the rate limiter,
/// circuit breaker, retries and cache run without real waiting, and can check when each call
/// would have happened.
public final class ManualClock: ResilienceClock {
    private let state = Mutex<(now: Duration, slept: [Duration])>((.zero, []))

    public init() {}

    public func now() -> Duration { state.withLock { $0.now } }

    /// Moves time forward by what is asked, at once.
    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        state.withLock {
            $0.slept.append(duration)
            if duration > .zero { $0.now += duration }
        }
    }

    public func advance(by duration: Duration) {
        state.withLock { $0.now += duration }
    }

    /// Every sleep asked for, in order.
    public var slept: [Duration] { state.withLock { $0.slept } }
}
