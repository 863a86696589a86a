import Synchronization

/// Closed, open or half-open, with explicit time so a test clock can drive it.
///
/// Closed: calls go through; it opens after `failureThreshold` failures in a row, or when at
/// least `minimumRequests` calls in the last `window` failed at `failureRate` or more. Open: no
/// calls for `openDuration`. Half-open: up to `halfOpenProbes` calls test the provider; as many
/// successes close it, one failure opens it again. Rate-limit answers and rejected inputs are not
/// failures: the provider is up.
public struct CircuitBreakerState: Sendable {
    public struct Settings: Sendable, Hashable {
        public var failureThreshold = 5
        public var failureRate = 0.5
        public var minimumRequests = 10
        public var window: Duration = .seconds(60)
        public var openDuration: Duration = .seconds(30)
        public var halfOpenProbes = 1

        public init() {}
    }

    public enum State: Sendable, Hashable {
        case closed
        case open(until: Duration)
        case halfOpen(inFlight: Int, succeeded: Int)

        /// 0 closed, 1 open, 2 half-open: the metric's values.
        public var gauge: Int {
            switch self {
            case .closed: 0
            case .open: 1
            case .halfOpen: 2
            }
        }

        public var name: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half_open"
            }
        }
    }

    public enum Permit: Sendable, Hashable {
        case allowed
        /// Not now: try again after this long.
        case rejected(retryIn: Duration)
    }

    public let settings: Settings
    public private(set) var state: State = .closed
    /// How many times the circuit opened: a call carries the count from its permit, so a call
    /// let through before the last opening (a straggler) cannot decide a half-open circuit.
    public private(set) var openings = 0
    private var consecutiveFailures = 0
    private var recent: [(at: Duration, failed: Bool)] = []

    public init(settings: Settings) {
        self.settings = settings
    }

    public mutating func permit(now: Duration) -> Permit {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .rejected(retryIn: until - now) }
            state = .halfOpen(inFlight: 1, succeeded: 0)
            return .allowed
        case .halfOpen(let inFlight, let succeeded):
            guard inFlight + succeeded < settings.halfOpenProbes else { return .rejected(retryIn: .milliseconds(100)) }
            state = .halfOpen(inFlight: inFlight + 1, succeeded: succeeded)
            return .allowed
        }
    }

    public mutating func recordSuccess(now: Duration) {
        consecutiveFailures = 0
        switch state {
        case .halfOpen(let inFlight, let succeeded):
            if succeeded + 1 >= settings.halfOpenProbes {
                state = .closed
                recent.removeAll()
            } else {
                state = .halfOpen(inFlight: max(0, inFlight - 1), succeeded: succeeded + 1)
            }
        case .closed:
            remember(failed: false, now: now)
        case .open:
            break
        }
    }

    /// `permittedIn`: ``openings`` when the failed call was permitted (nil: unknown, counts).
    public mutating func recordFailure(now: Duration, permittedIn: Int? = nil) {
        switch state {
        case .halfOpen:
            // A call from before the circuit last opened says nothing about the probe.
            if let permittedIn, permittedIn < openings { return }
            open(now)
        case .closed:
            consecutiveFailures += 1
            remember(failed: true, now: now)
            let failures = recent.filter(\.failed).count
            if consecutiveFailures >= settings.failureThreshold
                || (recent.count >= settings.minimumRequests && Double(failures) / Double(recent.count) >= settings.failureRate) {
                open(now)
            }
        case .open:
            break
        }
    }

    /// A call that proved nothing either way (rate-limited, cancelled): frees its probe slot.
    public mutating func recordNeutral() {
        if case .halfOpen(let inFlight, let succeeded) = state {
            state = .halfOpen(inFlight: max(0, inFlight - 1), succeeded: succeeded)
        }
    }

    private mutating func open(_ now: Duration) {
        openings += 1
        state = .open(until: now + settings.openDuration)
        consecutiveFailures = 0
        recent.removeAll()
    }

    private mutating func remember(failed: Bool, now: Duration) {
        recent.append((now, failed))
        let start = now - settings.window
        if let first = recent.firstIndex(where: { $0.at >= start }), first > 0 { recent.removeFirst(first) }
    }
}

/// The circuit breaker of one provider.
public final class CircuitBreaker: Sendable {
    private let state: Mutex<CircuitBreakerState>
    private let clock: any ResilienceClock
    private let changed: @Sendable (CircuitBreakerState.State) -> Void

    public init(settings: CircuitBreakerState.Settings, clock: any ResilienceClock = SystemResilienceClock(),
                changed: @escaping @Sendable (CircuitBreakerState.State) -> Void = { _ in }) {
        state = Mutex(CircuitBreakerState(settings: settings))
        self.clock = clock
        self.changed = changed
    }

    public var current: CircuitBreakerState.State { state.withLock { $0.state } }

    /// Half-open with every probe slot taken: no other call may go until a probe answers.
    public var probesAllOut: Bool {
        state.withLock { breaker in
            guard case .halfOpen(let inFlight, let succeeded) = breaker.state else { return false }
            return inFlight + succeeded >= breaker.settings.halfOpenProbes
        }
    }

    var clockNow: Duration { clock.now() }

    public func permit() -> CircuitBreakerState.Permit {
        permitted().permit
    }

    /// The permit and the circuit's openings count at that moment (for ``recordFailure(permittedIn:)``).
    public func permitted() -> (permit: CircuitBreakerState.Permit, openings: Int) {
        update { breaker in (breaker.permit(now: clock.now()), breaker.openings) }
    }

    public func recordSuccess() { update { $0.recordSuccess(now: clock.now()) } }
    public func recordFailure(permittedIn: Int? = nil) { update { $0.recordFailure(now: clock.now(), permittedIn: permittedIn) } }
    public func recordNeutral() { update { $0.recordNeutral() } }

    private func update<T>(_ body: (inout CircuitBreakerState) -> T) -> T {
        let (result, before, after) = state.withLock { breaker -> (T, CircuitBreakerState.State, CircuitBreakerState.State) in
            let before = breaker.state
            let result = body(&breaker)
            return (result, before, breaker.state)
        }
        if before.gauge != after.gauge { changed(after) }
        return result
    }
}

/// Thrown instead of calling a provider whose circuit is open; the repos go back untouched.
public struct CircuitOpenError: Error, CustomStringConvertible {
    public var retryIn: Duration
    public var description: String { "the circuit to the provider is open; next try in \(retryIn)" }
}

extension CircuitBreaker {
    /// How long no call may be tried from now: the rest of the open period, or, while every
    /// half-open probe is out, a short wait before looking again (its answer decides); nil when
    /// calls may be tried.
    public var openFor: Duration? {
        if case .open(let until) = current { return until - clockNow }
        return probesAllOut ? .milliseconds(250) : nil
    }
}
