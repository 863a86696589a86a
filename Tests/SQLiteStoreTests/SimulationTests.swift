import EmbedStarCore
import EmbedStarSQLiteStore
import EmbedStarTesting
import Foundation
import Testing

/// The collector of a simulation on SQLite: its own handle on the file, as another process.
struct SQLiteCollector: SimulationCollector {
    let store: SQLiteStore
    func put(_ repo: Repo, key: RecordKey) async throws { try await store.upsert([repo]) }
    func delete(key: RecordKey) async throws {
        let id = "repo:\(key)".replacingOccurrences(of: "'", with: "''")
        try await store.execute("DELETE FROM repo WHERE id = '\(id)'")
    }
    func dropVector(key: RecordKey) async throws -> Bool { false }
}

/// The store contract under seeded random schedules, each instance its own handle on one file.
struct SQLiteSimulationTests {
    static let setup: StoreSimulation.Setup = { _ in
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("sim.sqlite").path
        let collector = SQLiteStore(configuration: .init(path: path))
        try await collector.prepare()
        let simulation = StoreSimulation(open: { SQLiteStore(configuration: .init(path: path)) }, collector: SQLiteCollector(store: collector))
        return (simulation, {
            await collector.shutdown()
            try? FileManager.default.removeItem(at: folder)
        })
    }

    @Test(arguments: 1...6)
    func simulation(_ seed: UInt64) async throws {
        let report = try await StoreSimulation.run(seeds: 1, from: seed, setup: Self.setup)
        #expect(report.schedules == 1 && report.claims > 0 && report.writesApplied > 0, "\(report)")
    }

    @Test(.enabled(if: StoreSimulation.longRun != nil, "EMBED_STAR_SIM_RUNS is not set (bench/simulate)"))
    func manySeeds() async throws {
        try await StoreSimulation.runLong("sqlite", setup: Self.setup)
    }
}

/// Several processes opening one new database at once (replicas starting together on a shared
/// volume): every one prepares and works, none fails on the other's set-up.
struct SQLiteConcurrentOpenTests {
    @Test func storesOpeningANewFileAtOnceAllPrepare() async throws {
        for round in 0..<15 {
            let folder = try temporaryFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("new.sqlite").path
            let stores = (0..<4).map { _ in SQLiteStore(configuration: .init(path: path)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.prepare() } }
                try await group.waitForAll()
            }
            try await stores[0].upsert(StoreConformance.sampleRepos(count: 3))
            for store in stores {
                #expect(try await store.stats(modelIdentity: "m").total == 3, "round \(round)")
                await store.shutdown()
            }
        }
    }
}
