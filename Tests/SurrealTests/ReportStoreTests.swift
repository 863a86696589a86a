import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarReport
import EmbedStarSQLiteStore
import Foundation
import Logging
import Testing

/// A suite of its own, run in a stage of its own (`scripts/test`): its backfills and scans load
/// the one dev server, which made the concurrent-claim tests beside it flaky on 2.3.10.
@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct ReportStoreTests {
    /// `embed-star report` reads SurrealDB as it reads SQLite: the same repos embedded by the same
    /// provider give the same figures from both stores (samples are drawn by repo id, not by the
    /// order a store pages in).
    @Test func reportAgreesWithSQLite() async throws {
        var repos = SyntheticRepos.generate(count: 1_234, seed: 5)
        repos[17].description = "REJECT-ME please"
        repos[40].description = "REJECT-ME as well"
        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.dimensions = 32
        providerConfiguration.rejectTextsContaining = ["REJECT-ME"]
        let provider = MockProvider(configuration: providerConfiguration)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 200
        configuration.maxAttempts = 1

        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }  // also when a step throws: an open client ends the test process
        try await fixture.insert(repos)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sqlite = SQLiteStore(directory: folder)
        try await sqlite.prepare()
        try await sqlite.upsert(repos)

        var options = ReportOptions()
        options.sampleSize = 200
        options.mapSize = 600
        options.duplicateThreshold = 0.9
        var reports: [Report] = []
        for store in [fixture.store as any RepoStore, sqlite] {
            let pipeline = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: configuration,
                                                    instanceID: "report", logger: Logger(label: "test"))
            let summary = try await pipeline.backfill()
            #expect(summary.embedded == repos.count - 2 && summary.failed == 2)
            let report = try await ReportBuilder(sources: ReportSources(store: store, storeName: "s", provider: provider, providerName: "mock"),
                                                 options: options).build()
            reports.append(report)
        }
        let (surreal, local) = (reports[0], reports[1])
        #expect(surreal.backlog.total == 1_234 && surreal.backlog.embedded == 1_232 && surreal.backlog.failed == 2)
        #expect(surreal.backlog.scanned.total == 1_234 && surreal.backlog.scanned.embedded == 1_232 && surreal.backlog.scanned.failed == 2)
        #expect(surreal.failures.groups.map(\.reason) == ["rejected by the provider: mock provider rejects # input(s)"])
        #expect(surreal.failures.groups.map { Set($0.repos) } == local.failures.groups.map { Set($0.repos) })
        #expect(surreal.quality.vectors.checked == 1_232 && surreal.quality.vectors.staleHash == 0)
        #expect(surreal.quality.selfRetrieval?.queries == 200)
        #expect(surreal.quality.selfRetrieval?.top10 == local.quality.selfRetrieval?.top10)
        #expect(surreal.quality.selfRetrieval?.worst.map(\.repo) == local.quality.selfRetrieval?.worst.map(\.repo))
        #expect(surreal.quality.outliers.count == local.quality.outliers.count)
        #expect(surreal.quality.nearDuplicates.groups.map(\.repos) == local.quality.nearDuplicates.groups.map(\.repos))
        #expect(surreal.map.points == 600 && local.map.points == 600)
        await sqlite.shutdown()
    }
}
