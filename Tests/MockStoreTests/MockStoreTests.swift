import EmbedStarCore
import EmbedStarMockStore
import Foundation
import Testing

@Suite struct MockStoreTests {
    let repos = SyntheticRepos.generate(count: 40, seed: 3)
    let model = "mock/m@4"

    func claim(_ store: MockStore, _ owner: String, limit: Int = 10, lease: Duration = .seconds(60), model: String? = nil) async throws -> [ClaimedRepo] {
        try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: lease, model: model ?? self.model))
    }

    func write(_ claim: ClaimedRepo, vector: [Float] = [1, 0, 0, 0], hash: String = "h") -> RepoWrite {
        RepoWrite(id: claim.repo.id, revision: claim.revision, model: model, change: .embedded(vector: vector, contentHash: hash, generatedAt: Date()))
    }

    @Test func twoClaimersNeverGetTheSameRepo() async throws {
        let store = MockStore(repos: repos)
        let ids = try await withThrowingTaskGroup(of: [RepoID].self) { group in
            for owner in 0..<8 { group.addTask { try await claim(store, "o\(owner)", limit: 7).map(\.repo.id) } }
            return try await group.reduce(into: [RepoID]()) { $0 += $1 }
        }
        #expect(ids.count == repos.count)
        #expect(Set(ids).count == ids.count)
    }

    @Test func expiredLeaseIsTakenOverAndTheOldOwnersWriteIsRefused() async throws {
        let store = MockStore(repos: Array(repos.prefix(3)))
        let first = try await claim(store, "a", lease: .milliseconds(1))
        #expect(first.count == 3)
        try await Task.sleep(for: .milliseconds(20))
        let second = try await claim(store, "b")
        #expect(second.count == 3)
        let outcome = try await store.write([write(first[0])], owner: "a")
        #expect(outcome[first[0].repo.id] == .leaseLost)
        let applied = try await store.write([write(second[0])], owner: "b")
        #expect(applied[second[0].repo.id] == .applied)
    }

    @Test func liveLeaseIsNotHandedOut() async throws {
        let store = MockStore(repos: Array(repos.prefix(3)))
        #expect(try await claim(store, "a").count == 3)
        #expect(try await claim(store, "b").isEmpty)
    }

    @Test func conditionalWriteRejectsAChangedRepo() async throws {
        let store = MockStore(repos: Array(repos.prefix(2)))
        let claimed = try await claim(store, "a")
        var changed = claimed[0].repo
        changed.description = "new"
        await store.upsert(changed)
        let outcomes = try await store.write(claimed.map { write($0) }, owner: "a")
        #expect(outcomes[changed.id] == .changedSinceClaim)
        #expect(outcomes[claimed[1].repo.id] == .applied)
        let stats = try await store.stats(model: model)
        #expect(stats.pending == 1 && stats.embedded == 1 && stats.leased == 0)
        let again = try await claim(store, "b")
        #expect(again.map(\.repo.id) == [changed.id])
        #expect(again[0].repo.description == "new")
    }

    @Test func failuresCountAttemptsAndMarkFailed() async throws {
        let store = MockStore(repos: Array(repos.prefix(2)))
        var claimed = try await claim(store, "a")
        let failure = { (id: RepoID, permanent: Bool) in RepoFailure(id: id, reason: "boom", permanent: permanent, retryAfter: .zero) }
        var outcomes = try await store.recordFailures([failure(claimed[0].repo.id, false), failure(claimed[1].repo.id, true)], owner: "a", maxAttempts: 2)
        #expect(outcomes[claimed[0].repo.id] == .willRetry(attempts: 1))
        #expect(outcomes[claimed[1].repo.id] == .failed(attempts: 1))
        claimed = try await claim(store, "a")
        #expect(claimed.count == 1)
        #expect(claimed[0].attempts == 1)
        outcomes = try await store.recordFailures([failure(claimed[0].repo.id, false)], owner: "a", maxAttempts: 2)
        #expect(outcomes[claimed[0].repo.id] == .failed(attempts: 2))
        #expect(try await store.stats(model: model) == StoreStats(total: 2, embedded: 0, pending: 0, failed: 2, leased: 0))
        #expect(try await claim(store, "a").isEmpty)
        #expect(try await store.resetFailed() == 2)
        #expect(try await claim(store, "a").count == 2)
    }

    @Test func retryAfterKeepsARepoOutOfTheQueue() async throws {
        let store = MockStore(repos: Array(repos.prefix(1)))
        let claimed = try await claim(store, "a")
        _ = try await store.recordFailures([RepoFailure(id: claimed[0].repo.id, reason: "x", permanent: false, retryAfter: .seconds(60))], owner: "a", maxAttempts: 5)
        #expect(try await claim(store, "a").isEmpty)
        #expect(try await store.stats(model: model).pending == 1)
    }

    @Test func releaseReturnsReposAtOnce() async throws {
        let store = MockStore(repos: Array(repos.prefix(4)))
        let claimed = try await claim(store, "a")
        try await store.release(claimed.map(\.repo.id), owner: "b")  // not b's: nothing happens
        #expect(try await claim(store, "c").isEmpty)
        try await store.release(claimed.map(\.repo.id), owner: "a")
        #expect(try await claim(store, "c").count == 4)
    }

    @Test func releaseAllFreesAnOwnersOrphansButNotWhatItIsWorkingOn() async throws {
        let store = MockStore(repos: Array(repos.prefix(5)))
        let claimed = try await claim(store, "a")
        let working: Set = [claimed[0].repo.id]
        #expect(try await store.releaseAll(owner: "b", except: []) == 0)
        #expect(try await store.releaseAll(owner: "a", except: working) == 4)
        let again = try await claim(store, "c")
        #expect(Set(again.map(\.repo.id)) == Set(claimed.dropFirst().map(\.repo.id)))
    }

    @Test func otherModelMakesRepoPendingAndHidesTheOldHash() async throws {
        let store = MockStore(repos: Array(repos.prefix(1)))
        let claimed = try await claim(store, "a")
        _ = try await store.write([write(claimed[0])], owner: "a")
        #expect(try await claim(store, "a").isEmpty)
        let other = try await claim(store, "a", model: "mock/other@4")
        #expect(other.count == 1)
        #expect(other[0].embeddedHash == nil)
    }

    @Test func nearestOrdersByCosineAndFilters() async throws {
        let store = MockStore(repos: Array(repos.prefix(3)))
        let claimed = try await claim(store, "a")
        let vectors: [[Float]] = [[1, 0, 0, 0], [0.7, 0.7, 0, 0], [0, 0, 1, 0]]
        _ = try await store.write(zip(claimed, vectors).map { write($0, vector: $1) }, owner: "a")
        let hits = try await store.nearest(to: [1, 0.1, 0, 0], limit: 2, filter: SearchFilter())
        #expect(hits.map(\.repo.id) == [claimed[0].repo.id, claimed[1].repo.id])
        #expect(hits[0].score > hits[1].score)
        let language = try #require(claimed[2].repo.language)
        let filtered = try await store.nearest(to: [1, 0, 0, 0], limit: 5, filter: SearchFilter(language: language.uppercased()))
        #expect(filtered.allSatisfy { $0.repo.language == language })
        #expect(filtered.contains { $0.repo.id == claimed[2].repo.id })
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
        #expect(try await restarted.stats(model: model).embedded == 2)
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
