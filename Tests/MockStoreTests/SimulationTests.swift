import EmbedStarCore
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Testing

/// The collector of a simulation on the mock store: keys become the text of the id.
struct MockCollector: SimulationCollector {
    let store: MockStore
    func put(_ repo: Repo, key: RecordKey) async throws { try await store.upsert([repo]) }
    func delete(key: RecordKey) async throws { await store.delete([RepoID("repo:\(key)")]) }
    func dropVector(key: RecordKey) async throws -> Bool { false }
}

/// The store contract under seeded random schedules (EmbedStarTesting's StoreSimulation). The
/// mock store is one actor: every instance's handle is the same object.
struct MockSimulationTests {
    static let setup: StoreSimulation.Setup = { _ in
        let store = MockStore()
        return (StoreSimulation(open: { store }, collector: MockCollector(store: store)), {})
    }

    @Test(arguments: 1...6)
    func simulation(_ seed: UInt64) async throws {
        let report = try await StoreSimulation.run(seeds: 1, from: seed, setup: Self.setup)
        #expect(report.schedules == 1 && report.checks > report.steps)
    }

    @Test(.enabled(if: StoreSimulation.longRun != nil, "EMBED_STAR_SIM_RUNS is not set (bench/simulate)"))
    func manySeeds() async throws {
        let (count, first) = try #require(StoreSimulation.longRun)
        print("simulation mock: \(try await StoreSimulation.run(seeds: count, from: first, setup: Self.setup))")
    }
}
