import EmbedStarApp
import EmbedStarCore
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Testing

@Suite struct MockStoreTests {
    let repos = SyntheticRepos.generate(count: 40, seed: 3)
    let model = "mock/m@4"

    func claim(_ store: MockStore, _ owner: String, limit: Int = 10, lease: Duration = .seconds(60), model: String? = nil) async throws -> [ClaimedRepo] {
        try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: lease, modelIdentity: model ?? self.model))
    }

    func write(_ claim: ClaimedRepo, vector: [Float] = [1, 0, 0, 0], hash: String = "h") -> RepoWrite {
        RepoWrite(id: claim.repo.id, revision: claim.revision, modelIdentity: model, change: .embedded(vector: vector, contentHash: hash, generatedAt: Date()))
    }

    @Test(arguments: StoreCheck.allCases)
    func conformance(_ check: StoreCheck) async throws {
        try await StoreConformance(make: { MockStore() }).run(check)
    }

    @Test func seedFileIsReadLenientlyAndStateSurvivesARestart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let records = """
            [{"id": "repo:1", "full_name": "a/one", "description": "ünïcödé 日本 👍"},
             {"id": "repo:2", "full_name": "a/two", "stars": "many"},
             {"id": "repo:3", "full_name": "a/three", "unknown": true},
             "not even an object"]
            """
        try records.write(to: folder.appendingPathComponent("seed.json"), atomically: true, encoding: .utf8)
        let configuration = MockStore.Configuration(seedFile: "seed.json", stateFile: "state/mock.json")
        let store = MockStore(configuration: configuration, directory: folder)
        try await store.prepare()
        #expect(await store.count == 2)
        let rejected = await store.rejectedRecords
        #expect(rejected.map(\.record) == ["repo:2", "#3 of seed.json"])
        let claimed = try await claim(store, "a")
        _ = try await store.write(claimed.map { write($0) }, owner: "a")
        await store.shutdown()

        let restarted = MockStore(configuration: configuration, directory: folder)
        try await restarted.prepare()
        #expect(try await restarted.stats(modelIdentity: model).embedded == 2)
        #expect(await restarted.entry(RepoID("repo:1"))?.repo.description == "ünïcödé 日本 👍")
    }

    @Test func missingSeedFileIsAClearError() async throws {
        let store = MockStore(configuration: MockStore.Configuration(seedFile: "/nonexistent/repos.json"))
        await #expect { try await store.prepare() } throws: { "\($0)".contains("/nonexistent/repos.json") }
    }

    @Test func syntheticReposAreDeterministicAndVaried() {
        let a = SyntheticRepos.generate(count: 200, seed: 9)
        #expect(a == SyntheticRepos.generate(count: 200, seed: 9))
        #expect(a != SyntheticRepos.generate(count: 200, seed: 10))
        #expect(Set(a.compactMap(\.language)).count >= 8)
        #expect(Set(a.flatMap(\.topics)).count >= 20)
        #expect(Set(a.map(\.id)).count == 200)
    }
}

/// Stores that break one promise each, to show the conformance suite catches them.
@Suite struct BrokenStoreTests {
    /// Leases for no time at all: every claim hands out repos someone else is working on.
    struct IgnoresLeases: ForwardingStore {
        let inner: any RepoStore = MockStore()
        func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
            var request = request
            request.leaseDuration = .zero
            return try await inner.claimPending(request)
        }
    }

    /// Writes over a repo that changed after the claim: it takes the record's current revision.
    struct OverwritesChanges: ForwardingStore {
        let mock = MockStore()
        var inner: any RepoStore { mock }
        func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] {
            var current: [RepoWrite] = []
            for var write in writes {
                if let entry = await mock.entry(write.id) { write.revision = String(entry.revision) }
                current.append(write)
            }
            return try await mock.write(current, owner: owner)
        }
    }

    @Test(arguments: [StoreCheck.liveLeaseIsNotHandedOut, .twoClaimersNeverGetTheSameRepo])
    func theSuiteCatchesAStoreThatIgnoresLeases(_ check: StoreCheck) async throws {
        await withKnownIssue {
            try await StoreConformance(make: { IgnoresLeases() }).run(check)
        }
    }

    @Test func theSuiteCatchesAStoreThatOverwritesAChangedRepo() async throws {
        await withKnownIssue {
            try await StoreConformance(make: { OverwritesChanges() }).run(.conditionalWriteRejectsAChangedRepo)
        }
    }
}
