import EmbedStarConfig
import Foundation

/// The pipeline's own settings (`pipeline:` in `plugins.yaml`).
public struct PipelineConfiguration: Decodable, Sendable, Hashable {
    /// Repos claimed and embedded per batch (`BATCH_SIZE`).
    public var batchSize = 50
    /// Batches in flight at once (`PARALLEL_WORKERS`).
    public var parallelWorkers = 4
    /// Pause of each worker between batches (`BATCH_DELAY_MS`).
    public var batchDelayMs = 0
    /// How long a claim is held before another instance may take it over.
    public var leaseSeconds = 60
    /// Failed attempts before a repo is marked failed.
    public var maxAttempts = 5
    /// First wait before a failed repo is retried; doubles per attempt.
    public var retryDelayMs = 5_000
    /// How often `run` looks for new work when the queue is empty (one worker looks; the others
    /// wait for it, see ``IdleWatch``).
    public var pollIntervalMs = 50
    /// Estimated tokens per provider call; `nil` leaves it to the provider.
    public var maxBatchTokens: Int?
    /// Names this instance's leases; defaults to host name and process id.
    public var instanceID: String?
    /// How long a backfill waits out an unreachable store before it gives up (`run` never does).
    public var storeOutageSeconds = 300
    /// After a model change, how many repos the service re-embeds per minute (new and changed
    /// repos always go first); unset re-embeds as fast as everything else. `backfill` ignores it.
    public var reembedPerMinute: Int?

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case batchSize = "batch_size", parallelWorkers = "parallel_workers", batchDelayMs = "batch_delay_ms"
        case leaseSeconds = "lease_seconds", maxAttempts = "max_attempts", retryDelayMs = "retry_delay_ms"
        case pollIntervalMs = "poll_interval_ms", maxBatchTokens = "max_batch_tokens", instanceID = "instance_id"
        case storeOutageSeconds = "store_outage_seconds", reembedPerMinute = "reembed_per_minute"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.fill(&batchSize, .batchSize)
        try c.fill(&parallelWorkers, .parallelWorkers)
        try c.fill(&batchDelayMs, .batchDelayMs)
        try c.fill(&leaseSeconds, .leaseSeconds)
        try c.fill(&maxAttempts, .maxAttempts)
        try c.fill(&retryDelayMs, .retryDelayMs)
        try c.fill(&pollIntervalMs, .pollIntervalMs)
        maxBatchTokens = try c.decodeIfPresent(Int.self, forKey: .maxBatchTokens)
        instanceID = try c.decodeIfPresent(String.self, forKey: .instanceID)
        try c.fill(&storeOutageSeconds, .storeOutageSeconds)
        reembedPerMinute = try c.decodeIfPresent(Int.self, forKey: .reembedPerMinute)
    }

    /// Rejects values that cannot work, naming the key (and where it was set, when known).
    public func validate(location: (String) -> ConfigLocation? = { _ in nil }) throws(ConfigError) {
        func check(_ ok: Bool, _ key: CodingKeys, _ rule: String) throws(ConfigError) {
            if !ok { throw ConfigError(location: location(key.rawValue), path: "pipeline.\(key.rawValue)", message: rule) }
        }
        try check(batchSize >= 1 && batchSize <= 10_000, .batchSize, "must be between 1 and 10000, got \(batchSize)")
        try check(parallelWorkers >= 1 && parallelWorkers <= 256, .parallelWorkers, "must be between 1 and 256, got \(parallelWorkers)")
        try check(batchDelayMs >= 0, .batchDelayMs, "must not be negative")
        try check(leaseSeconds >= 1, .leaseSeconds, "must be at least 1")
        try check(maxAttempts >= 1, .maxAttempts, "must be at least 1")
        try check(retryDelayMs >= 0, .retryDelayMs, "must not be negative")
        try check(pollIntervalMs >= 10, .pollIntervalMs, "must be at least 10")
        try check((maxBatchTokens ?? 1) >= 1, .maxBatchTokens, "must be at least 1")
        try check(storeOutageSeconds >= 0, .storeOutageSeconds, "must not be negative")
        try check((reembedPerMinute ?? 1) >= 1, .reembedPerMinute, "must be at least 1 (leave it out for no limit)")
    }
}
