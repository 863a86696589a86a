/// A metric's name and the help line `/metrics` shows for it.
public struct MetricDescription: Sendable, Hashable {
    public var name: String
    public var help: String

    public init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }
}

/// Core's metric names and their help. Labels are bounded: provider, model, kind, outcome,
/// operation; never repo names. Plugins describe their own metrics on their factory
/// (``PluginFactory/metrics``).
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
    public static let reposFailed = "embed_star_repos_failed"
    public static let reposStored = "embed_star_repos_stored"
    public static let reposEmbedded = "embed_star_repos_embedded"
    public static let oldestPendingAge = "embed_star_oldest_pending_age_seconds"
    public static let workersBusy = "embed_star_workers_busy"
    public static let workerUtilization = "embed_star_worker_utilization"
    public static let buildInfo = "embed_star_build_info"
    public static let circuitBreakerState = "embed_star_circuit_breaker_state"
    public static let storeQueryDuration = "embed_star_store_query_duration_seconds"
    public static let storeErrors = "embed_star_store_errors_total"
    public static let cacheHits = "embed_star_cache_hits_total"
    public static let cacheMisses = "embed_star_cache_misses_total"
    public static let rateLimitSharers = "embed_star_rate_limit_sharers"
    public static let lexicalReady = "embed_star_lexical_ready"
    public static let lexicalWaiting = "embed_star_lexical_changes_waiting"

    /// Help lines by name (swift-metrics has no place for them; `/metrics` adds them).
    public static let help: [String: String] = [
        embeddings: "Vectors written, by provider and model.",
        embeddingErrors: "Provider errors and rejected answers, by bounded kind.",
        embeddingDuration: "Time of successful provider calls.",
        providerRequests: "Provider calls by outcome.",
        rateLimits: "Rate-limit answers from the provider.",
        batchSize: "Repos claimed per batch.",
        unchanged: "Repos confirmed unchanged without a provider call.",
        writeConflicts: "Writes refused because the repo changed or the lease was lost.",
        reposPending: "Repos waiting for an embedding (store count).",
        reposFailed: "Repos marked failed (store count).",
        reposStored: "Repos in the store.",
        reposEmbedded: "Repos with a current vector (store count).",
        oldestPendingAge: "How long the longest-waiting pending repo has waited since it was queued (0: none pending; read from the store about once a minute).",
        workersBusy: "Workers processing a batch now.",
        workerUtilization: "Share of workers processing a batch now.",
        buildInfo: "The build (version from git describe or the image tag), plugins and model identity of this instance (always 1).",
        circuitBreakerState: "Circuit to the provider: 0 closed, 1 open, 2 half-open.",
        storeQueryDuration: "Time of store calls (claim, write, failures, maintain: the store's idle work).",
        storeErrors: "Store calls that failed, by operation.",
        cacheHits: "Texts whose vector came from the embedding cache (no provider call).",
        cacheMisses: "Texts the embedding cache did not hold.",
        lexicalReady: "1 when the store's lexical search answers, 0 while its words are added or its index built, or when it has none (read from the store about once a minute).",
        lexicalWaiting: "Changes noted (a repo inserted, changed or deleted) whose words for lexical search are not rewritten yet (0 when the store rewrites them with the change; read about once a minute).",
        rateLimitSharers: "Instances sharing the provider account's rate limits through the store, this one included (each takes an equal part).",
    ]
}
