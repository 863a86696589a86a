/// Exponential backoff with full jitter (a uniform wait between zero and the capped exponential
/// step), bounded by a number of attempts and by a deadline for the whole operation.
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts = 4
    public var baseDelay: Duration = .milliseconds(250)
    public var maxDelay: Duration = .seconds(10)
    public var deadline: Duration = .seconds(120)

    public init() {}

    /// The wait before attempt `attempt + 1`, after `attempt` failed attempts and `elapsed` since
    /// the first began; nil when no attempt is left or the wait would pass the deadline.
    public func delay(afterAttempt attempt: Int, elapsed: Duration, using random: inout some RandomNumberGenerator) -> Duration? {
        guard attempt < maxAttempts else { return nil }
        let step = min(maxDelay, baseDelay * (1 << min(attempt - 1, 30)))
        let wait = Duration.nanoseconds(Int64(Double(step.nanoseconds) * Double.random(in: 0...1, using: &random)))
        guard elapsed + wait < deadline else { return nil }
        return wait
    }

    /// A wait between half and all of `base` doubled `step` times, capped at `cap`: for loops
    /// that retry without an attempt budget (an outage, a rate limit without `retry-after`, a
    /// provider that cannot describe its model yet), where some wait must always be kept.
    public static func halfJitter(step: Int, base: Duration, cap: Duration) -> Duration {
        let ceiling = min(cap, base * (1 << min(max(step, 0), 30)))
        return .nanoseconds(Int64(Double(ceiling.nanoseconds) * Double.random(in: 0.5...1)))
    }

    /// Whether a wait the provider asked for (`retry-after`) still fits in the deadline.
    public func allows(wait: Duration, elapsed: Duration) -> Bool {
        elapsed + wait < deadline
    }
}
