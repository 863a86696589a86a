import EmbedStarBuildInfo
import EmbedStarCore
import Foundation
import Metrics
import Prometheus
import Synchronization

/// What the monitoring endpoints report: the pipeline's activity, the store and provider, and
/// the Prometheus registry. Never holds a secret.
public final class MonitoringState: Sendable {
    public struct Components: Sendable {
        public var store: any RepoStore
        public var storeName: String
        public var provider: any EmbeddingProvider
        public var providerName: String
        /// The model identity the pipeline embeds with; nil until it has started (then
        /// ``MonitoringState/pipelineStarted(model:)`` sets it).
        public var model: String?
        public var instanceID: String
        /// The provider's circuit breaker, for `/health`.
        public var breaker: CircuitBreaker?

        public init(store: any RepoStore, storeName: String, provider: any EmbeddingProvider, providerName: String, model: String? = nil, instanceID: String,
                    breaker: CircuitBreaker? = nil) {
            self.breaker = breaker
            self.store = store
            self.storeName = storeName
            self.provider = provider
            self.providerName = providerName
            self.model = model
            self.instanceID = instanceID
        }
    }

    public let components: Components
    public let activity: PipelineActivity
    public let registry: PrometheusCollectorRegistry
    public let livenessTimeout: Duration
    public let version: String
    private let startedModel: Mutex<String?>
    /// `embed_star_build_info`'s series; replaced (the old one removed) when the model is known.
    private let buildInfo: Mutex<Metrics.Gauge>
    private let cached = Mutex<(stats: StoreStats?, provider: ComponentHealth?, providerCheckedAt: ContinuousClock.Instant?)>((nil, nil, nil))
    /// The oldest pending repo's queue time, and when the store was last asked (nil: never).
    private let oldest = Mutex<(since: Date?, readAt: ContinuousClock.Instant?)>((nil, nil))
    /// How often the store is asked for the oldest pending repo (its query reads more than the counts).
    static let oldestReadEvery = Duration.seconds(60)
    /// The store's lexical search status, and when it was last asked (nil: never).
    private let lexical = Mutex<(status: LexicalStatus?, readAt: ContinuousClock.Instant?)>((nil, nil))
    /// How often the store is asked about its lexical search (it counts the words it holds).
    static let lexicalReadEvery = Duration.seconds(60)

    /// Help lines for `/metrics`, by metric name.
    public let metricHelp: [String: String]

    /// - Parameter metricHelp: Core's and the plugins' metric descriptions
    ///   (``PluginRegistry/metricHelp``).
    public init(components: Components, activity: PipelineActivity, registry: PrometheusCollectorRegistry,
                metricHelp: [String: String] = MetricNames.help,
                livenessTimeout: Duration = .seconds(300), version: String = EmbedStarVersion.current) {
        self.metricHelp = metricHelp
        self.components = components
        self.activity = activity
        self.registry = registry
        self.livenessTimeout = livenessTimeout
        self.version = version
        startedModel = Mutex(components.model)
        buildInfo = Mutex(Self.recordBuildInfo(version: version, components: components, model: components.model))
        Gauge(label: MetricNames.circuitBreakerState, dimensions: [("provider", components.providerName)])
            .record(components.breaker?.current.gauge ?? 0)
    }

    /// The pipeline has started (store and provider prepared, the model known): from here on
    /// `/readyz` asks the store and `/health` counts the model's backlog.
    public func pipelineStarted(model: String) {
        let previous = startedModel.withLock { old in
            defer { old = model }
            return old
        }
        // A series with the same labels is the same series: destroying it would leave none.
        guard previous != model else { return }
        buildInfo.withLock { current in
            current.destroy()
            current = Self.recordBuildInfo(version: version, components: components, model: model)
        }
    }

    /// One series: the build's version, the plugins, and the model identity (empty while the
    /// pipeline starts): two builds, or one build on two models, are told apart.
    private static func recordBuildInfo(version: String, components: Components, model: String?) -> Metrics.Gauge {
        let gauge = Metrics.Gauge(label: MetricNames.buildInfo, dimensions: [
            ("version", version), ("provider", components.providerName), ("store", components.storeName), ("model", model ?? ""),
        ])
        gauge.record(1)
        return gauge
    }

    /// The model the pipeline embeds with; nil while it is starting.
    public var model: String? { startedModel.withLock { $0 } }

    /// Live when the workers went round recently (or have not started yet).
    public var isLive: Bool {
        guard let since = activity.sinceHeartbeat else { return true }
        return since < livenessTimeout
    }

    /// Reads the store's counts into the backlog gauges (called periodically, not per scrape);
    /// returns whether they were published. Before the pipeline knows its model (a provider
    /// that is down keeps it starting), the counts are for the model the store last served,
    /// once the store's schema is in place: the backlog alerts can fire while it starts.
    @discardableResult
    public func refreshStats() async -> Bool {
        var published = false
        var schemaCurrent = false
        do {
            if let model = try await countingModel() {
                schemaCurrent = true
                let stats = try await components.store.stats(modelIdentity: model)
                cached.withLock { $0.stats = stats }
                Gauge(label: MetricNames.reposPending).record(stats.pending)
                Gauge(label: MetricNames.reposFailed).record(stats.failed)
                Gauge(label: MetricNames.reposStored).record(stats.total)
                Gauge(label: MetricNames.reposEmbedded).record(stats.embedded)
                try await refreshOldest(model: model, pending: stats.pending)
                published = true
            }
        } catch {
            Counter(label: MetricNames.storeErrors, dimensions: [("operation", "stats")]).increment()
        }
        if schemaCurrent {
            do {
                try await refreshLexical()
            } catch {
                // Said as unknown (no `lexical` in /health, not ready) rather than as last read.
                lexical.withLock { $0 = (nil, ContinuousClock.now) }
                Gauge(label: MetricNames.lexicalReady).record(0)
                Counter(label: MetricNames.storeErrors, dimensions: [("operation", "lexical_status")]).increment()
            }
        }
        let snapshot = activity.snapshot
        Gauge(label: MetricNames.workersBusy).record(snapshot.busyWorkers)
        Gauge(label: MetricNames.workerUtilization).record(snapshot.workers > 0 ? Double(snapshot.busyWorkers) / Double(snapshot.workers) : 0)
        return published
    }

    /// The model the gauges count for: the pipeline's once it started; before, the one the
    /// store last served ("" when none: nothing embedded yet), or nil while the store has no
    /// current schema (the pipeline is still migrating it).
    private func countingModel() async throws -> String? {
        if let model { return model }
        let schema = try await components.store.openForReading()
        guard schema.version >= schema.required else { return nil }
        return schema.servedModelIdentity ?? ""
    }

    /// The age gauge, from the store's oldest queue time read at most every ``oldestReadEvery``
    /// (at once when the backlog was empty and no longer is), and the clock in between.
    private func refreshOldest(model: String, pending: Int) async throws {
        let now = ContinuousClock.now
        let (since, readAt) = oldest.withLock { ($0.since, $0.readAt) }
        var current = since
        if pending == 0 {
            current = nil
            oldest.withLock { $0 = (nil, nil) }  // read at once when repos are pending again
        } else if readAt.map({ now - $0 >= Self.oldestReadEvery * max(1, pending / 100_000) }) ?? true {
            // A large backlog is read less often (the store may sort its whole queue): once a
            // minute per 100,000 pending repos.
            current = try await components.store.oldestPendingSince(modelIdentity: model)
            oldest.withLock { $0 = (current, now) }
        }
        Gauge(label: MetricNames.oldestPendingAge).record(current.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
    }

    /// The lexical search gauges, from the store's status read at most every
    /// ``lexicalReadEvery`` (also after a failed read), once the store's schema is current
    /// (before, its words may not exist).
    private func refreshLexical() async throws {
        let now = ContinuousClock.now
        guard lexical.withLock({ $0.readAt.map { now - $0 >= Self.lexicalReadEvery } ?? true }) else { return }
        let status = try await components.store.lexicalStatus()
        lexical.withLock { $0 = (status, now) }
        Gauge(label: MetricNames.lexicalReady).record(status.state == .ready ? 1 : 0)
        Gauge(label: MetricNames.lexicalWaiting).record(status.waiting ?? 0)
    }

    var lastStats: StoreStats? { cached.withLock { $0.stats } }
    var lastLexical: LexicalStatus? { lexical.withLock { $0.status } }

    /// The longest a health check may take before `/health` and `/readyz` call it down.
    static let healthLimit = Duration.seconds(5)

    /// The store's health, within ``healthLimit``.
    func storeHealth() async -> ComponentHealth {
        let store = components.store
        return await ComponentHealth.within(Self.healthLimit) { await store.health() }
    }

    /// The provider's health, asked at most every 30 s (a health check is free, but not nothing).
    func providerHealth() async -> ComponentHealth {
        let now = ContinuousClock.now
        if let (health, at) = cached.withLock({ state in state.provider.map { ($0, state.providerCheckedAt!) } }),  // set together below
           now - at < .seconds(30) {
            return health
        }
        let provider = components.provider
        let health = await ComponentHealth.within(Self.healthLimit) { await provider.health() }
        cached.withLock { $0 = ($0.stats, health, now) }
        return health
    }
}
