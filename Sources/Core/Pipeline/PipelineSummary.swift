/// What one batch, or a whole run, did.
public struct PipelineSummary: Sendable, Hashable, Codable {
    public var claimed = 0
    /// New vectors written.
    public var embedded = 0
    /// Repos whose text and model had not changed: confirmed with no provider call.
    public var unchanged = 0
    /// Repos marked failed for good (until `retry-failed`).
    public var failed = 0
    /// Repos that failed this time and will be retried.
    public var retrying = 0
    /// Writes refused because the repo changed after the claim (it stays pending) or its lease
    /// was lost.
    public var conflicts = 0
    /// Repos handed back to the queue without an attempt counted (the provider was rate limiting).
    public var released = 0
    public var providerCalls = 0
    /// Texts sent to the provider (after de-duplication).
    public var textsSent = 0
    /// Texts whose vector came from the cache.
    public var cacheHits = 0

    public init() {}

    public mutating func add(_ other: PipelineSummary) {
        claimed += other.claimed
        embedded += other.embedded
        unchanged += other.unchanged
        failed += other.failed
        retrying += other.retrying
        conflicts += other.conflicts
        released += other.released
        providerCalls += other.providerCalls
        textsSent += other.textsSent
        cacheHits += other.cacheHits
    }
}
