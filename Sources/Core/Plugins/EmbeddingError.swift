/// An error from an embedding provider, sorted into what the pipeline should do about it.
public struct EmbeddingError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A transient fault (timeout, connection, 5xx): try again later.
        case retryable
        /// The provider asked to slow down; not a failure of the items.
        case rateLimited(retryAfter: Duration?)
        /// The provider rejected the listed inputs (indices into the request: too long, empty,
        /// refused). `nil` when it could not say which. They are isolated from the rest of the
        /// batch (which goes on) and each counted as a failed attempt, up to `max_attempts`.
        case invalidInput(indices: [Int]?)
        /// Nothing will work until an operator acts (bad key, unknown model, no quota).
        case fatal
    }

    public var kind: Kind
    public var message: String

    /// Worth trying again later: a transient fault or a rate limit.
    public var isTransient: Bool {
        switch kind {
        case .retryable, .rateLimited: true
        case .invalidInput, .fatal: false
        }
    }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// A bounded label for metrics: one of `retryable`, `rate_limited`, `invalid_input`, `fatal`.
    public var label: String {
        switch kind {
        case .retryable: "retryable"
        case .rateLimited: "rate_limited"
        case .invalidInput: "invalid_input"
        case .fatal: "fatal"
        }
    }

    public var description: String { "\(label): \(message)" }
}
