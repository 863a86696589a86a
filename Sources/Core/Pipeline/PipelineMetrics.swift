import Metrics

/// The pipeline's metrics, created once per pipeline (swift-metrics caches by label and
/// dimensions). The provider's own (requests, errors, rate limits, call duration) are
/// ``ProtectedProvider``'s.
struct PipelineMetrics: Sendable {
    let embeddings: Counter
    let unchanged: Counter
    let conflicts: Counter
    let cacheHits: Counter
    let cacheMisses: Counter
    let batchSize: Recorder

    init(provider: String, model: String) {
        let dimensions = [("provider", provider), ("model", model)]
        embeddings = Counter(label: MetricNames.embeddings, dimensions: dimensions)
        unchanged = Counter(label: MetricNames.unchanged, dimensions: dimensions)
        conflicts = Counter(label: MetricNames.writeConflicts, dimensions: [("provider", provider)])
        cacheHits = Counter(label: MetricNames.cacheHits, dimensions: [("provider", provider)])
        cacheMisses = Counter(label: MetricNames.cacheMisses, dimensions: [("provider", provider)])
        batchSize = Recorder(label: MetricNames.batchSize, dimensions: [("provider", provider)])
    }

    func record(_ summary: PipelineSummary) {
        embeddings.increment(by: summary.embedded)
        unchanged.increment(by: summary.unchanged)
        conflicts.increment(by: summary.conflicts)
        batchSize.record(summary.claimed)
    }

    func cache(hits: Int, misses: Int) {
        if hits > 0 { cacheHits.increment(by: hits) }
        if misses > 0 { cacheMisses.increment(by: misses) }
    }

    /// Times a store call (`embed_star_store_query_duration_seconds{operation}`); failures count
    /// in `embed_star_store_errors_total{operation}`.
    func timed<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        do {
            let value = try await body()
            Metrics.Timer(label: MetricNames.storeQueryDuration, dimensions: [("operation", operation)], preferredDisplayUnit: .seconds)
                .recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            return value
        } catch {
            Counter(label: MetricNames.storeErrors, dimensions: [("operation", operation)]).increment()
            throw error
        }
    }
}
