import EmbedStarCore
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Synchronization
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
        #expect(report.schedules == 1 && report.claims > 0 && report.writesApplied > 0, "\(report)")
    }

    @Test(.enabled(if: StoreSimulation.longRun != nil, "EMBED_STAR_SIM_RUNS is not set (bench/simulate)"))
    func manySeeds() async throws {
        try await StoreSimulation.runLong("mock", setup: Self.setup)
    }
}

/// A store that acknowledges every third write without making it.
final class ForgetfulStore: ForwardingStore {
    let inner: any RepoStore
    private let count = Mutex(0)
    init(_ inner: any RepoStore) { self.inner = inner }
    func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] {
        let forget = count.withLock { $0 += 1; return $0.isMultiple(of: 3) }
        guard forget else { return try await inner.write(writes, owner: owner) }
        try await inner.release(writes.map(\.id), owner: owner)
        return Dictionary(uniqueKeysWithValues: writes.map { ($0.id, WriteOutcome.applied) })
    }
}

/// The simulation must notice a broken store, and give a schedule cut short to what fails.
struct SimulationCatchesBrokenStoresTests {
    @Test func aStoreThatLosesWritesIsCaughtWithAShortSchedule() async throws {
        let setup: StoreSimulation.Setup = { _ in
            let mock = MockStore()
            let store = ForgetfulStore(mock)
            // Short leases: shrinking runs the seed up to eight times more.
            var options = StoreSimulation.Options()
            options.lease = .milliseconds(300)
            options.longLease = .milliseconds(900)
            options.liveness = .milliseconds(500)
            return (StoreSimulation(open: { store }, collector: MockCollector(store: mock), options: options), {})
        }
        do {
            _ = try await StoreSimulation.run(seeds: 1, from: 1, setup: setup)
            Issue.record("the simulation did not notice a store that loses writes")
        } catch let failure as SimulationFailure {
            #expect(failure.message.contains("reported applied") || failure.message.contains("the collector deleted"), "\(failure.message)")
            #expect(failure.steps < 80 && failure.shrunkFrom == 80, "the schedule was not shrunk: \(failure.steps) steps")
            print(failure)
            #expect(failure.description.contains("seed 1"))
        }
    }
}
