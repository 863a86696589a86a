import EmbedStarApp
import EmbedStarBuildInfo
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarMonitoring
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import Prometheus
import EmbedStarTesting
import Testing

/// swift-metrics is bootstrapped once per process.
let registry = MonitoringMetrics.bootstrap()

/// A store whose health and stats can be made to fail.
actor SwitchableStore: RepoStore {
    let inner: MockStore
    var down = false
    /// What `lexicalStatus` answers instead of the mock's (nil: the mock's).
    var lexical: LexicalStatus?

    init(_ inner: MockStore) { self.inner = inner }

    func setDown(_ value: Bool) { down = value }
    func setLexical(_ value: LexicalStatus?) { lexical = value }
    func lexicalStatus() async throws -> LexicalStatus {
        if down { throw CancellationError() }
        if let lexical { return lexical }
        return try await inner.lexicalStatus()
    }

    func prepare() async throws { try await inner.prepare() }
    func openForReading() async throws -> StoreSchema { try await inner.openForReading() }
    func requeue(_ ids: [RepoID]) async throws -> Int { try await inner.requeue(ids) }
    func find(_ reference: String, modelIdentity model: String) async throws -> [StoredRepo] { try await inner.find(reference, modelIdentity: model) }
    func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] { try await inner.claimPending(request) }
    func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] { try await inner.write(writes, owner: owner) }
    func recordFailures(_ failures: [RepoFailure], owner: String, maxAttempts: Int) async throws -> [RepoID: FailureOutcome] {
        try await inner.recordFailures(failures, owner: owner, maxAttempts: maxAttempts)
    }
    func release(_ ids: [RepoID], owner: String) async throws { try await inner.release(ids, owner: owner) }
    func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID> {
        try await inner.renew(ids, owner: owner, leaseDuration: leaseDuration)
    }
    func releaseAll(owner: String, except: Set<RepoID>) async throws -> Int { try await inner.releaseAll(owner: owner, except: except) }
    func resetFailed() async throws -> Int { try await inner.resetFailed() }
    func upsert(_ repos: [Repo]) async throws { try await inner.upsert(repos) }
    func stats(modelIdentity model: String) async throws -> StoreStats {
        if down { throw CancellationError() }
        return try await inner.stats(modelIdentity: model)
    }
    func coverage() async throws -> [String: Int] { try await inner.coverage() }
    func oldestPendingSince(modelIdentity model: String) async throws -> Date? { try await inner.oldestPendingSince(modelIdentity: model) }
    func maintain(owner: String, modelIdentity model: String) async throws { try await inner.maintain(owner: owner, modelIdentity: model) }
    func nearest(to vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit] { [] }
    func scan(modelIdentity model: String, after: String?, limit: Int) async throws -> ScanPage { try await inner.scan(modelIdentity: model, after: after, limit: limit) }
    func health() async -> ComponentHealth {
        down ? ComponentHealth(status: .down, detail: "ws://root:hunter2@db:8000/rpc: connection refused") : .up
    }
}

@Suite(.serialized) struct MonitoringTests {
    func fixture(repos: Int = 30, livenessTimeout: Duration = .seconds(300), clock: any ResilienceClock = SystemResilienceClock()) async throws -> (MonitoringState, Pipeline, SwitchableStore) {
        let store = SwitchableStore(MockStore(repos: SyntheticRepos.generate(count: repos)))
        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.dimensions = 8
        let provider = MockProvider(configuration: providerConfiguration)
        let pipeline = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: PipelineConfiguration(),
                                                activity: PipelineActivity(clock: clock), instanceID: "test-instance", logger: Logger(label: "test"))
        let state = MonitoringState(
            components: .init(store: store, storeName: "mock", provider: provider, providerName: "mock", model: pipeline.modelIdentity, instanceID: "test-instance"),
            activity: pipeline.activity, registry: registry, livenessTimeout: livenessTimeout)
        return (state, pipeline, store)
    }

    func app(_ state: MonitoringState) -> some ApplicationProtocol {
        Application(router: MonitoringRouter.make(state))
    }

    @Test func livenessFollowsTheWorkers() async throws {
        let clock = ManualClock()
        let (state, pipeline, _) = try await fixture(livenessTimeout: .seconds(2), clock: clock)
        try await app(state).test(.router) { client in
            try await client.execute(uri: "/livez", method: .get) { #expect($0.status == .ok) }
            _ = try await pipeline.backfill()
            try await client.execute(uri: "/livez", method: .get) { #expect($0.status == .ok) }
            // Workers that went round once and then stopped answering look stuck.
            clock.advance(by: .seconds(1))
            try await client.execute(uri: "/livez", method: .get) { #expect($0.status == .ok) }
            clock.advance(by: .milliseconds(1500))
            try await client.execute(uri: "/livez", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("stuck"))
            }
        }
    }

    @Test func readinessAndHealthFollowTheStore() async throws {
        let (state, pipeline, store) = try await fixture()
        _ = try await pipeline.backfill()
        await state.refreshStats()
        try await app(state).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let json = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                #expect(json["status"] as? String == "up")
                #expect(json["pending"] as? Int == 0)
                #expect(json["workers"] as? Int == 4)
                #expect(json["last_successful_write"] is String)
                #expect((json["store"] as? [String: Any])?["status"] as? String == "up")
                #expect((json["provider"] as? [String: Any])?["circuit"] as? String == "closed")
                #expect((json["provider"] as? [String: Any])?["model"] as? String == "mock/mock-embed@8")
            }
            await store.setDown(true)
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = String(buffer: response.body)
                #expect(body.contains("\"status\":\"down\""))
                #expect(!body.contains("hunter2"))
            }
        }
    }

    /// Before the pipeline knows its model (a provider that is down keeps it starting), the
    /// backlog gauges count for the model the store last served (none: all pending); the age
    /// of the oldest pending repo grows between reads of the store.
    @Test func backlogGaugesBeforeThePipelineStartsWithTheOldestAge() async throws {
        let store = SwitchableStore(MockStore(repos: SyntheticRepos.generate(count: 7)))
        let state = MonitoringState(
            components: .init(store: store, storeName: "mock", provider: MockProvider(), providerName: "mock", instanceID: "starting"),
            activity: PipelineActivity(), registry: registry)
        #expect(state.model == nil)
        #expect(await state.refreshStats(), "published while the pipeline starts")
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(await state.refreshStats())
        try await app(state).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("embed_star_repos_pending 7"), "\(text)")
                let age = text.split(separator: "\n").first { $0.hasPrefix("embed_star_oldest_pending_age_seconds ") }
                let seconds = age.flatMap { Double($0.split(separator: " ")[1]) }
                #expect(seconds.map { $0 >= 1.2 && $0 < 60 } == true, "the repos were queued 1.2 s ago: \(String(describing: age))")
            }
        }
    }

    /// `/health` and the lexical gauges show the store's lexical search status as the store
    /// reports it (a database filled before lexical search, its words being added), read at
    /// most once a minute: a later change shows at the next read, not at the next refresh.
    @Test func lexicalSearchStatusReachesHealthAndMetrics() async throws {
        let store = SwitchableStore(MockStore(repos: SyntheticRepos.generate(count: 4)))
        await store.setLexical(LexicalStatus(state: .filling, indexed: 2_000, waiting: 17, detail: "words being added"))
        func state() -> MonitoringState {
            MonitoringState(components: .init(store: store, storeName: "mock", provider: MockProvider(), providerName: "mock", instanceID: "lexical"),
                            activity: PipelineActivity(), registry: registry)
        }
        func read(_ state: MonitoringState) async throws -> (health: [String: Any], metrics: String) {
            try await app(state).test(.router) { client in
                let health = try await client.execute(uri: "/health", method: .get) { response in
                    try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                }
                let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                return (health, metrics)
            }
        }
        let filling = state()
        #expect(try await read(filling).health["lexical"] == nil, "nothing said before the store was read")
        await filling.refreshStats()
        var (health, metrics) = try await read(filling)
        let lexical = try #require(health["lexical"] as? [String: Any])
        #expect(lexical["state"] as? String == "filling" && lexical["indexed"] as? Int == 2_000 && lexical["waiting"] as? Int == 17, "\(lexical)")
        #expect(lexical["detail"] as? String == "words being added")
        #expect(metrics.contains("embed_star_lexical_ready 0") && metrics.contains("embed_star_lexical_changes_waiting 17"), "\(metrics)")
        #expect(metrics.contains("# HELP embed_star_lexical_ready "))

        await store.setLexical(nil)  // the mock: ready, every repo's words
        await filling.refreshStats()
        #expect((try await read(filling).health["lexical"] as? [String: Any])?["state"] as? String == "filling", "read again only after a minute")
        let later = state()
        await later.refreshStats()
        (health, metrics) = try await read(later)
        let ready = try #require(health["lexical"] as? [String: Any])
        #expect(ready["state"] as? String == "ready" && ready["indexed"] as? Int == 4 && ready["waiting"] as? Int == 0 && ready["detail"] == nil, "\(ready)")
        #expect(metrics.contains("embed_star_lexical_ready 1") && metrics.contains("embed_star_lexical_changes_waiting 0"), "\(metrics)")
    }

    /// `embed_star_build_info` carries the build's version and, once the pipeline started, the
    /// model identity: one series, the one without the model removed.
    @Test func buildInfoCarriesTheVersionAndTheModel() async throws {
        let store = SwitchableStore(MockStore(repos: []))
        let state = MonitoringState(
            components: .init(store: store, storeName: "build-info-store", provider: MockProvider(), providerName: "mock", instanceID: "b"),
            activity: PipelineActivity(), registry: registry)
        func series() async throws -> [String] {
            try await app(state).test(.router) { client in
                try await client.execute(uri: "/metrics", method: .get) { response in
                    String(buffer: response.body).split(separator: "\n").map(String.init)
                        .filter { $0.hasPrefix("embed_star_build_info{") && $0.contains("build-info-store") }
                }
            }
        }
        #expect(try await series().count == 1)
        state.pipelineStarted(model: "mock/mock-embed@8")
        let lines = try await series()
        #expect(lines.count == 1 && lines[0].contains("model=\"mock/mock-embed@8\"") && Double(lines[0].split(separator: " ").last ?? "") == 1, "\(lines)")
        #expect(lines.first?.contains("version=\"\(EmbedStarVersion.current)\"") == true)
        #expect(EmbedStarVersion.current != "0.1.0", "the version comes from the build, not a constant")
    }

    @Test func metricsUseTheSeedsNamesInPrometheusFormat() async throws {
        let (state, pipeline, _) = try await fixture(repos: 40)
        _ = try await pipeline.backfill()
        await state.refreshStats()
        try await app(state).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                for name in ["embed_star_embeddings_total", "embed_star_embeddings_errors_total", "embed_star_repos_pending",
                             "embed_star_circuit_breaker_state", "embed_star_embedding_duration_seconds_bucket", "embed_star_rate_limits_total",
                             "embed_star_build_info", "embed_star_batch_size", "embed_star_provider_requests_total", "embed_star_worker_utilization",
                             "embed_star_store_query_duration_seconds_bucket", "embed_star_oldest_pending_age_seconds"] {
                    #expect(text.contains(name), "\(name) missing")
                }
                #expect(text.contains("embed_star_repos_pending 0"))
                #expect(!text.contains("repo:syn"))  // labels never carry repo names
            }
        }
    }

    /// Help lines come from the module that emits the metric: Core's from ``MetricNames``, a
    /// plugin's from its factory, through the registry; Monitoring names none of them.
    @Test func helpLinesComeFromCoreAndFromThePluginsFactory() async throws {
        var plugins = PluginRegistry()
        try! plugins.register(StoreFactory(name: "widgets", summary: "test", configuration: MockStore.Configuration.self,
                                      metrics: [MetricDescription("test_plugin_widgets", help: "Widgets the test plugin holds.")]) { _, _ in
            MockStore(repos: [])
        })
        Gauge(label: "test_plugin_widgets").record(3)
        let (fixtureState, pipeline, _) = try await fixture(repos: 5)
        _ = try await pipeline.backfill()
        let state = MonitoringState(components: fixtureState.components, activity: pipeline.activity, registry: registry,
                                    metricHelp: plugins.metricHelp)
        try await app(state).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("# HELP test_plugin_widgets Widgets the test plugin holds.\n# TYPE test_plugin_widgets gauge"))
                #expect(text.contains("# HELP embed_star_embeddings_total Vectors written, by provider and model."))
            }
        }
    }
}
