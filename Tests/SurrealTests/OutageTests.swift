import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import Foundation
import Logging
import EmbedStarTesting
import Testing

@Suite(.enabled(if: DevServer.available, "needs the dev server's Python (scripts/test)"), .serialized)
struct OutageTests {
    @Test(arguments: ["ws", "http"])
    func serverDroppedMidBackfillRecoversWithNothingLostOrLeftClaimed(_ scheme: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-kv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try DevServer.Process(path: "surrealkv://\(folder.path)")
        defer { server.stop() }
        try await server.startAndWaitUntilUp()
        let fixture = try StoreFixture(scheme, address: "127.0.0.1:\(server.port)")
        defer { Task { await fixture.close() } }
        let repos = SyntheticRepos.generate(count: 1000, seed: 8)
        try await fixture.insert(repos)

        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.dimensions = 16
        providerConfiguration.latencyMs = 60
        var configuration = PipelineConfiguration()
        configuration.batchSize = 20
        configuration.parallelWorkers = 2
        let pipeline = try await Pipeline.start(provider: MockProvider(configuration: providerConfiguration), providerName: "mock",
                                                store: fixture.store, configuration: configuration, instanceID: "outage", logger: Logger(label: "test"))
        let run = Task { try await pipeline.backfill() }
        try await waitUntil(timeout: .seconds(60)) { try await fixture.store.stats(modelIdentity: pipeline.modelIdentity).embedded >= 200 }

        server.stop()
        try await Task.sleep(for: .seconds(1))
        try await server.restartAndWaitUntilUp()

        _ = try await run.value
        let stats = try await fixture.store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats == StoreStats(total: 1000, embedded: 1000, pending: 0, failed: 0, leased: 0))
        let withVectors = try await fixture.client.query("SELECT count() FROM repo WHERE embedding != NONE GROUP ALL").first?.array?.first?["count"]
        #expect(withVectors == 1000)
    }
}
