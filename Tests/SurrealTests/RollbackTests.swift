import EmbedStarApp
import EmbedStarCore
import EmbedStarMockStore
@testable import EmbedStarSurrealStore
import Foundation
import Logging
import SurrealClient
import Testing

/// A canary of another model, rolled back: the instances that outlive it take the queue back
/// (each instance a store of its own, as separate processes are).
@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct RollbackTests {
    @Test func theFleetServesAgainAfterACanaryOfAnotherModelIsRolledBack() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.insert(SyntheticRepos.generate(count: 20))
        let a1 = try StoreFixture("ws", database: fixture.database, instance: "a1")
        let a2 = try StoreFixture("http", database: fixture.database, instance: "a2")
        let canary = try StoreFixture("ws", database: fixture.database, instance: "b1")
        defer { Task { await a1.close(); await a2.close(); await canary.close() } }
        let liveness = Duration.milliseconds(1_500)
        func request(_ owner: String, _ model: String) -> ClaimRequest {
            ClaimRequest(owner: owner, limit: 50, leaseDuration: .seconds(30), modelIdentity: model, liveness: liveness)
        }
        func embed(_ store: SurrealStore, _ owner: String, _ model: String) async throws -> Int {
            let claimed = try await store.claimPending(request(owner, model))
            let outcomes = try await store.write(claimed.map {
                RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [1, 0], contentHash: "h", generatedAt: Date()))
            }, owner: owner)
            return outcomes.values.filter { $0 == .applied }.count
        }
        try await a1.store.prepare()
        try await a2.store.prepare()
        #expect(try await embed(a1.store, "a1", "A") == 20)
        #expect(try await embed(a2.store, "a2", "A") == 0)
        // The canary starts on model B, embeds a few repos and is rolled back.
        try await canary.store.prepare()
        let canaryClaim = try await canary.store.claimPending(ClaimRequest(owner: "b1", limit: 3, leaseDuration: .seconds(30), modelIdentity: "B", liveness: liveness))
        #expect(canaryClaim.count == 3)
        _ = try await canary.store.write(canaryClaim.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: "B", change: .embedded(vector: [0, 1], contentHash: "h", generatedAt: Date()))
        }, owner: "b1")
        await canary.store.shutdown()
        // The collector goes on; once the canary's liveness ran out, model A is served again.
        try await fixture.insert(SyntheticRepos.generate(count: 25).suffix(5))
        try await Task.sleep(for: liveness + .milliseconds(500))
        var embedded = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while embedded < 8, ContinuousClock.now < deadline {
            embedded += try await embed(a1.store, "a1", "A") + embed(a2.store, "a2", "A")
            if embedded < 8 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(embedded == 8, "the 5 new repos and the 3 the canary embedded must get model A's vectors again")
        let stats = try await a1.store.stats(modelIdentity: "A")
        #expect(stats.total == 25 && stats.embedded == 25 && stats.pending == 0, "\(stats)")
    }
}
