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
    private let cached = Mutex<(stats: StoreStats?, provider: ComponentHealth?, providerCheckedAt: ContinuousClock.Instant?)>((nil, nil, nil))

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
        Gauge(label: MetricNames.buildInfo, dimensions: [("version", version), ("provider", components.providerName), ("store", components.storeName)]).record(1)
        Gauge(label: MetricNames.circuitBreakerState, dimensions: [("provider", components.providerName)])
            .record(components.breaker?.current.gauge ?? 0)
    }

    /// The pipeline has started (store and provider prepared, the model known): from here on
    /// `/readyz` asks the store and `/health` counts the model's backlog.
    public func pipelineStarted(model: String) {
        startedModel.withLock { $0 = model }
    }

    /// The model the pipeline embeds with; nil while it is starting.
    public var model: String? { startedModel.withLock { $0 } }

    /// Live when the workers went round recently (or have not started yet).
    public var isLive: Bool {
        guard let since = activity.sinceHeartbeat else { return true }
        return since < livenessTimeout
    }

    /// Reads the store's counts into the backlog gauges (called periodically, not per scrape).
    public func refreshStats() async {
        guard let model else { return }  // nothing to count against before the model is known
        do {
            let stats = try await components.store.stats(model: model)
            cached.withLock { $0.stats = stats }
            Gauge(label: MetricNames.reposPending).record(stats.pending)
            Gauge(label: MetricNames.reposFailed).record(stats.failed)
            Gauge(label: MetricNames.reposStored).record(stats.total)
            Gauge(label: MetricNames.reposEmbedded).record(stats.embedded)
        } catch {
            Counter(label: MetricNames.storeErrors, dimensions: [("operation", "stats")]).increment()
        }
        let snapshot = activity.snapshot
        Gauge(label: MetricNames.workersBusy).record(snapshot.busyWorkers)
        Gauge(label: MetricNames.workerUtilization).record(snapshot.workers > 0 ? Double(snapshot.busyWorkers) / Double(snapshot.workers) : 0)
    }

    var lastStats: StoreStats? { cached.withLock { $0.stats } }

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

public enum EmbedStarVersion {
    public static let current = "0.1.0"
}
