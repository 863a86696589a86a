import EmbedStarApp
import EmbedStarCore
@testable import EmbedStarSurrealStore
import Foundation
import SurrealClient
import Testing

/// Vector writes in the engine's import mode (``QuietWriteState``, 3.x): quiet only while nothing
/// but embed-star watches the repo table, and the repo event still queues what others change;
/// never on 2.x.
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
        guard try await fixture.store.dialect().quietWrites else {
            #expect(await fixture.store.writesQuietly() == false)
            return
        }
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
        ("DEFINE FIELD has_vector ON repo VALUE embedding != NONE", "its field definitions has_vector"),
        ("DEFINE DATABASE OVERWRITE $database CHANGEFEED 1h", "the database's changefeed"),
    ])
    func anObserverTurnsThemOff(_ definition: String, _ reason: String) async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        guard try await fixture.store.dialect().quietWrites else { return }
        try await fixture.setUp(definition.replacingOccurrences(of: "$database", with: fixture.database))
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
        try await watched.store.prepare()
        #expect(await watched.store.writesQuietly() == false)
        if try await watched.store.dialect().quietWrites {
            #expect(watched.store.quietWrites.withLock { $0?.reason } == "watched field embedding_model is one embed-star writes")
        }
    }

    /// Which field definitions count as watching embed-star's fields.
    @Test func fieldDefinitionsThatConstrainOurFields() {
        let cases: [(String, String, Bool)] = [
            ("embedding", "DEFINE FIELD embedding ON repo TYPE option<array<number>> PERMISSIONS FULL", false),
            ("embedding_model", "DEFINE FIELD embedding_model ON repo TYPE none | string PERMISSIONS FULL", false),
            ("embedding", "DEFINE FIELD embedding ON repo TYPE array<float> ASSERT array::len($value) = 384 PERMISSIONS FULL", true),
            ("embedding_generated_at", "DEFINE FIELD embedding_generated_at ON repo VALUE time::now() PERMISSIONS FULL", true),
            ("embedding[*]", "DEFINE FIELD embedding[*] ON repo TYPE number PERMISSIONS FULL", false),
            ("has_vector", "DEFINE FIELD has_vector ON repo VALUE embedding != NONE PERMISSIONS FULL", true),
            ("updated_at", "DEFINE FIELD updated_at ON repo VALUE time::now() PERMISSIONS FULL", false),
            ("description", "DEFINE FIELD description ON repo TYPE string PERMISSIONS FULL", false),
        ]
        for (name, definition, expected) in cases {
            #expect(SurrealStore.constrainsOurFields(name: name, definition: definition) == expected, "\(definition)")
        }
    }

    /// In import mode 3.x answers nothing from a DELETE: every delete of the write must come
    /// before `OPTION IMPORT`, or its repo would lose the entry and never get the vector.
    @Test func theQueueDeletesComeBeforeImportMode() throws {
        let lines = SurrealStore.writeSQL(vectors: [true, false, true], quiet: true).components(separatedBy: ";\n")
        let on = try #require(lines.firstIndex(of: "OPTION IMPORT"))
        let off = try #require(lines.firstIndex(of: "OPTION IMPORT = false"))
        #expect(lines.indices.filter { lines[$0].contains("DELETE") }.allSatisfy { $0 < on })
        #expect(lines.indices.filter { lines[$0].hasPrefix("UPDATE $r") }.allSatisfy { $0 > on && $0 < off })
        #expect(lines.filter { $0.hasPrefix("UPDATE $r") && $0.contains("WHERE $d") }.count == 3)
        #expect(lines.indices.filter { lines[$0].contains("SELECT") && $0 > 2 }.allSatisfy { $0 > off })
        // Not quiet (2.x, or something watches): no option, each UPDATE in an IF block.
        let plain = SurrealStore.writeSQL(vectors: [true, true], quiet: false)
        #expect(!plain.contains("OPTION"))
        #expect(plain.components(separatedBy: ";\n").filter { $0.hasPrefix("IF $d") }.count == 2)
    }
}
