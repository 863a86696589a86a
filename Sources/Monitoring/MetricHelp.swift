import EmbedStarCore

/// HELP lines for the exposition: swift-metrics has no place for help text, so it is added to
/// the registry's output by name.
enum MetricHelp {
    static let texts: [String: String] = [
        MetricNames.embeddings: "Vectors written, by provider and model.",
        MetricNames.embeddingErrors: "Provider errors and rejected answers, by bounded kind.",
        MetricNames.embeddingDuration: "Time of successful provider calls.",
        MetricNames.providerRequests: "Provider calls by outcome.",
        MetricNames.rateLimits: "Rate-limit answers from the provider.",
        MetricNames.batchSize: "Repos claimed per batch.",
        MetricNames.unchanged: "Repos confirmed unchanged without a provider call.",
        MetricNames.writeConflicts: "Writes refused because the repo changed or the lease was lost.",
        MetricNames.reposPending: "Repos waiting for an embedding (store count).",
        MetricNames.circuitBreakerState: "Circuit to the provider: 0 closed, 1 open, 2 half-open.",
        MetricNames.cacheHits: "Texts whose vector came from the embedding cache (no provider call).",
        MetricNames.cacheMisses: "Texts the embedding cache did not hold.",
        "embed_star_repos_failed": "Repos marked failed (store count).",
        "embed_star_repos_stored": "Repos in the store.",
        "embed_star_repos_embedded": "Repos with a current vector (store count).",
        "embed_star_workers_busy": "Workers processing a batch now.",
        "embed_star_worker_utilization": "Share of workers processing a batch now.",
        "embed_star_build_info": "Version and plugins of this instance (always 1).",
        MetricNames.storeErrors: "Store calls that failed, by operation.",
        MetricNames.storeQueryDuration: "Time of store calls (claim, write, failures).",
        "surreal_pool_connections_in_use": "SurrealDB connections (or requests) in use.",
        "surreal_pool_waits_total": "Calls that waited for a pooled SurrealDB connection.",
        "surreal_pool_timeouts_total": "Calls that gave up waiting for a pooled SurrealDB connection.",
        "surreal_pool_size": "Size of the SurrealDB connection pool.",
    ]

    static func annotate(_ exposition: String) -> String {
        var output = ""
        output.reserveCapacity(exposition.utf8.count + 2048)
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).split(separator: " ").first.map(String.init) ?? ""
                output += "# HELP \(name) \(texts[name] ?? "embed-star metric \(name).")\n"
            }
            output += line
            output += "\n"
        }
        if output.hasSuffix("\n\n") { output.removeLast() }
        return output
    }
}
