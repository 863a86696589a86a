/// Metric names and labels. Labels are bounded: provider, model, kind, outcome; never repo names.
public enum MetricNames {
    public static let embeddings = "embed_star_embeddings_total"
    public static let embeddingErrors = "embed_star_embeddings_errors_total"
    public static let embeddingDuration = "embed_star_embedding_duration_seconds"
    public static let providerRequests = "embed_star_provider_requests_total"
    public static let rateLimits = "embed_star_rate_limits_total"
    public static let batchSize = "embed_star_batch_size"
    public static let unchanged = "embed_star_repos_unchanged_total"
    public static let writeConflicts = "embed_star_write_conflicts_total"
    public static let reposPending = "embed_star_repos_pending"
}

extension MetricNames {
    public static let circuitBreakerState = "embed_star_circuit_breaker_state"
    public static let storeQueryDuration = "embed_star_store_query_duration_seconds"
    public static let storeErrors = "embed_star_store_errors_total"
    public static let cacheHits = "embed_star_cache_hits_total"
    public static let cacheMisses = "embed_star_cache_misses_total"
}
