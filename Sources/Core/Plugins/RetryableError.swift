/// An error that says whether trying again later may succeed. Stores conform their errors so
/// the pipeline rides out an outage (a dropped connection, a restarting server) instead of
/// stopping.
public protocol RetryableError: Error {
    var isRetryable: Bool { get }
}

extension Error {
    /// True for errors that declare themselves retryable.
    public var isRetryable: Bool { (self as? any RetryableError)?.isRetryable ?? false }
}
