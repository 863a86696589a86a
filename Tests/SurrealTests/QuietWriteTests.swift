import EmbedStarApp
import EmbedStarCore
@testable import EmbedStarSurrealStore
import Foundation
import SurrealClient
import Testing

/// Vector writes in the engine's import mode (``QuietWriteState``): quiet only while nothing but
/// embed-star watches the repo table, and the repo event still queues what others change.
@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct QuietWriteTests {
    let model = "mock/mock-embed@16"

    func claimAndWrite(_ fixture: StoreFixture, owner: String = "a") async throws -> [RepoID: WriteOutcome] {
        let claimed = try await fixture.store.claimPending(ClaimRequest(owner: owner, limit: 50, leaseDuration: .seconds(60), modelIdentity: model))
        let writes = claimed.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [0.6, 0.8], contentHash: "h", generatedAt: Date()))
        }
        return try await fixture.store.write(writes, owner: owner)
    }

    /// How many times a collector's own event saw embed-star's UPDATEs of the repos.
    func seen(_ fixture: StoreFixture) async throws -> Int {
        Int(try await fixture.client.query("RETURN count(SELECT id FROM seen)").last?.int ?? -1)
    }

    /// Nothing else watches: the writes are quiet, the event of a collector defined meanwhile
    /// misses them until the next check, and sees them after it; a collector's own change
    /// still queues the repo again (its UPDATE is not embed-star's, so the repo event runs).
    @Test func writesAreQuietOnlyWhileNothingElseWatchesTheTable() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.insert(SyntheticRepos.generate(count: 4, seed: 7))
        #expect(Set(try await claimAndWrite(fixture).values) == [.applied])
        #expect(fixture.store.quietWrites.withLock { $0?.quiet } == true)

        try await fixture.setUp("""
            DEFINE TABLE seen SCHEMALESS;
            DEFINE EVENT collector_log ON TABLE repo WHEN $event = "UPDATE" THEN { CREATE seen SET repo = $after.id }
            """)
        let first = SyntheticRepos.generate(count: 4, seed: 7)[0].id
        try await fixture.setUp("UPDATE type::record($id) SET description = 'a new text'", ["id": .string(first.rawValue)])
        #expect(try await seen(fixture) == 1)
        // Written within the check interval: quiet still (what the docs promise at most).
        #expect(try await claimAndWrite(fixture)[first] == .applied)
        #expect(try await seen(fixture) == 1)

        // The next check finds the collector's event: the writes fire it from then on.
        fixture.store.quietWrites.withLock { $0 = nil }
        try await fixture.setUp("UPDATE type::record($id) SET description = 'a newer text'", ["id": .string(first.rawValue)])
        #expect(try await seen(fixture) == 2)
        #expect(try await claimAndWrite(fixture)[first] == .applied)
        #expect(fixture.store.quietWrites.withLock { $0?.reason } == "its events collector_log")
        #expect(try await seen(fixture) == 3)
        let stored = try await fixture.client.query("SELECT VALUE embedding FROM type::record($id)", ["id": .string(first.rawValue)])
        #expect(stored.last?.array?.first?.array?.count == 2)
        #expect(try await fixture.store.stats(modelIdentity: model).embedded == 4)
    }

    /// Each kind of observer turns the quiet writes off, and so do the configuration and a
    /// watched field that embed-star writes.
    @Test(arguments: [
        ("DEFINE TABLE repo_by_model AS SELECT embedding_model, count() AS count FROM repo GROUP BY embedding_model", "the views repo_by_model"),
        ("DEFINE TABLE OVERWRITE repo SCHEMALESS CHANGEFEED 1h", "the table's changefeed"),
    ])
    func anObserverTurnsThemOff(_ definition: String, _ reason: String) async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.setUp(definition)
        try await fixture.insert(SyntheticRepos.generate(count: 3, seed: 8))
        #expect(Set(try await claimAndWrite(fixture).values) == [.applied])
        #expect(fixture.store.quietWrites.withLock { $0?.reason } == reason)
        if definition.contains("repo_by_model") {
            // The view saw the vectors' model arrive: the writes fired what watches them.
            let counted = try await fixture.client.query("SELECT VALUE count FROM repo_by_model WHERE embedding_model = $m", ["m": .string(model)])
            #expect(counted.last?.array?.first?.int == 3)
        }
    }

    @Test func theConfigurationAndAWatchedFieldOfOursTurnThemOff() async throws {
        let off = try StoreFixture("ws") { $0.quietWrites = false }
        defer { Task { await off.close() } }
        try await off.store.prepare()
        try await off.insert(SyntheticRepos.generate(count: 2, seed: 9))
        #expect(Set(try await claimAndWrite(off).values) == [.applied])
        #expect(await off.store.writesQuietly() == false)

        let watched = try StoreFixture("ws") { $0.watchedFields = ["description", "embedding_model"] }
        defer { Task { await watched.close() } }
        #expect(await watched.store.writesQuietly() == false)
        #expect(watched.store.quietWrites.withLock { $0?.reason } == "watched field embedding_model is one embed-star writes")
    }

    /// In import mode the engine answers nothing from a DELETE: every delete of the write must
    /// come before `OPTION IMPORT`, or its repo would lose the entry and never get the vector.
    @Test func theQueueDeletesComeBeforeImportMode() throws {
        let lines = SurrealStore.writeSQL(vectors: [true, false, true], quiet: true).components(separatedBy: ";\n")
        let on = try #require(lines.firstIndex(of: "OPTION IMPORT"))
        let off = try #require(lines.firstIndex(of: "OPTION IMPORT = false"))
        #expect(lines.indices.filter { lines[$0].contains("DELETE") }.allSatisfy { $0 < on })
        #expect(lines.indices.filter { lines[$0].hasPrefix("UPDATE $r") }.allSatisfy { $0 > on && $0 < off })
        #expect(lines.filter { $0.hasPrefix("UPDATE $r") }.count == 3)
        #expect(lines.indices.filter { lines[$0].contains("SELECT") && $0 > 2 }.allSatisfy { $0 > off })
        #expect(!SurrealStore.writeSQL(vectors: [true], quiet: false).contains("OPTION"))
        // 2.x: each UPDATE in an IF block, inside import mode all the same.
        let blocks = SurrealStore.writeSQL(vectors: [true, true], quiet: true, inWhere: false).components(separatedBy: ";\n")
        let blocksOn = try #require(blocks.firstIndex(of: "OPTION IMPORT"))
        #expect(blocks.indices.filter { blocks[$0].hasPrefix("IF $d") }.count == 2)
        #expect(blocks.indices.filter { blocks[$0].hasPrefix("IF $d") }.allSatisfy { $0 > blocksOn })
        #expect(blocks.indices.filter { blocks[$0].contains("DELETE") }.allSatisfy { $0 < blocksOn })
    }
}
