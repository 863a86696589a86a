import EmbedStarApp
import EmbedStarCore
import Foundation
import SurrealClient
import Testing

@testable import EmbedStarSurrealStore

/// Lexical search, on both engines (3.x's full-text indexes, 2.x's terms), on a database the
/// collector filled before the words' migration (8 on 3.x, 10 on 2.x): the words of the repos
/// stored before are added in chunks after the start, while the collector goes on changing and
/// deleting, for record keys of every kind; search says it is not ready until the indexes are
/// built, then finds every repo by its words.
@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct LexicalTests {
    /// Record keys of every kind SurrealDB has, each with a name of its own.
    static let keyed: [(key: SurrealValue, name: String)] = [
        (.int(456), "numberkey"),
        (.string("123"), "digitkey"),
        (.string("odd-id.with.dots"), "dottedkey"),
        (.uuid(UUID(uuidString: "0B1A8C5E-8D5B-4F0E-9B1D-2F3C4D5E6F70")!), "uuidkey"),
        (.array([.string("a"), .int(1)]), "arraykey"),
        (.object(["o": .string("x")]), "objectkey"),
    ]

    static func record(_ key: SurrealValue) -> SurrealValue { .recordID(RecordID(table: "repo", id: key)) }

    /// Waits for lexical search to answer (the words added and the indexes built), and for the
    /// notes of the collector's writes meanwhile to be handled.
    static func waitUntilReady(_ store: SurrealStore, client: SurrealClient, within limit: Duration = .seconds(240)) async throws {
        let deadline = ContinuousClock.now + limit
        while true {
            do {
                _ = try await store.lexicalSearch("anything", limit: 1, filter: SearchFilter())
                break
            } catch let error as LexicalSearchUnsupported where error.reason != nil && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        while try await client.query("SELECT VALUE id FROM embed_star_words_change LIMIT 1").last?.array?.isEmpty == false {
            guard ContinuousClock.now < deadline else {
                Issue.record("change notes are still waiting")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func aDatabaseFilledBeforeGetsTheWordsOfEveryRepo() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare(through: 6)
        for (key, name) in Self.keyed {
            _ = try await fixture.setUp("CREATE $id CONTENT $content RETURN NONE", [
                "id": Self.record(key),
                "content": .object(["name": .string(name), "full_name": .string("keys/\(name)"), "owner": .object(["login": .string("keys")]),
                                    "description": .string("a record key of its own kind"), "topics": .array([.string("keys")])]),
            ])
        }
        // More than one chunk: the rest is added after prepare returns.
        let synthetic = SyntheticRepos.generate(count: SurrealStore.wordsChunk + 500, seed: 8)
        try await fixture.insert(synthetic)
        // Migrated (`embed-star migrate`), with no instance running yet: no words, and `status` says who adds them.
        try await fixture.store.prepare(through: Migrations.newest)
        let migrated = try await fixture.store.lexicalStatus()
        #expect(migrated.state == .filling && migrated.indexed == 0 && migrated.waiting == 0 && migrated.detail?.contains("running embed-star") == true,
                "\(migrated.line)")
        try await fixture.store.prepare()
        // `status` counts what is stored while the words are added: never more words than repos.
        let early = try await fixture.store.lexicalStatus()
        #expect(early.state != .unavailable && (early.indexed ?? -1) >= 0 && early.indexed! <= synthetic.count + Self.keyed.count, "\(early.line)")
        // The collector goes on while the words are added: a change and a delete.
        _ = try await fixture.setUp("UPDATE $changed SET description = 'reworded entirely'; DELETE $deleted", [
            "changed": Self.record(.string("123")), "deleted": Self.record(.int(456)),
        ])
        do {
            _ = try await fixture.store.lexicalSearch("keys", limit: 5, filter: SearchFilter())
        } catch let error as LexicalSearchUnsupported {
            #expect("\(error)".contains("not ready"), "\(error)")
        }
        try await Self.waitUntilReady(fixture.store, client: fixture.client)

        let counts = try await fixture.client.query("RETURN [(SELECT count() FROM repo GROUP ALL)[0].count, (SELECT count() FROM embed_star_words GROUP ALL)[0].count]").last?.array
        #expect(counts?.first == counts?.last && counts?.first == .int(Int64(synthetic.count + Self.keyed.count - 1)), "one words record per repo: \(String(describing: counts))")
        let ready = try await fixture.store.lexicalStatus()
        #expect(ready == LexicalStatus(state: .ready, indexed: synthetic.count + Self.keyed.count - 1, waiting: 0), "\(ready.line)")
        for (key, name) in Self.keyed.dropFirst() {
            let hits = try await fixture.store.lexicalSearch(name, limit: 3, filter: SearchFilter())
            #expect(hits.first?.repo.fullName == "keys/\(name)", "\(key): \(hits.map(\.repo.fullName))")
        }
        #expect(try await fixture.store.lexicalSearch("numberkey", limit: 3, filter: SearchFilter()).isEmpty, "a deleted repo's words are gone")
        #expect(try await fixture.store.lexicalSearch("reworded", limit: 3, filter: SearchFilter()).map(\.repo.fullName) == ["keys/digitkey"])
        let kinds = try await fixture.store.lexicalSearch("record key kind", limit: 10, filter: SearchFilter())
        // The repos with every word first, then (the limit not reached) repos with any.
        #expect(Set(kinds.prefix(4).map(\.repo.fullName)) == Set(Self.keyed.dropFirst(2).map { "keys/\($0.name)" }), "every word: \(kinds.map(\.repo.fullName))")
        #expect(kinds.count == 10 && zip(kinds, kinds.dropFirst()).allSatisfy { $0.score >= $1.score })
        var random = SeededRandom(seed: 8)
        for _ in 0..<25 {
            let repo = random.pick(synthetic)
            let hits = try await fixture.store.lexicalSearch(repo.fullName, limit: 10, filter: SearchFilter())
            #expect(hits.contains { $0.repo.id == repo.id }, "\(repo.fullName): \(hits.map(\.repo.fullName))")
        }
        // The fill is recorded as done; a new start does not repeat it.
        // (The deleted repo counts when the fill met it before the delete.)
        let progress = try await fixture.client.query("SELECT * FROM ONLY embed_star_meta:words").last
        let added = progress?["added"]?.int ?? 0
        #expect(progress?["finished"]?.bool == true && [synthetic.count + Self.keyed.count - 1, synthetic.count + Self.keyed.count].contains(Int(added)), "\(String(describing: progress))")
        let again = try StoreFixture("ws", database: fixture.database)
        defer { Task { await again.close() } }
        try await again.store.prepare()
        #expect(try await again.client.query("SELECT VALUE added FROM ONLY embed_star_meta:words").last == .int(added))
        #expect(try await again.store.lexicalStatus() == ready, "another process reads the same from the database")
        // An index removed (by hand, a restore): the status says so at once, in the process that
        // saw it ready too; the words are all in, the indexes come next.
        _ = try await fixture.setUp("REMOVE INDEX embed_star_words_body ON embed_star_words")
        for store in [fixture.store, again.store] {
            let building = try await store.lexicalStatus()
            #expect(building.state == .building && building.indexed == ready.indexed && building.detail?.contains("last step by instance") == true, "\(building.line)")
        }
        // The keepers see it within their check (15 s) and define the indexes again.
        let deadline = ContinuousClock.now + SurrealStore.wordsIndexCheckEvery + .seconds(20)
        var status = try await again.store.lexicalStatus()
        while status.state != .ready, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            status = try await again.store.lexicalStatus()
        }
        #expect(status == ready, "the indexes defined again: \(status.line)")
        #expect(try await fixture.store.lexicalSearch("reworded", limit: 3, filter: SearchFilter()).map(\.repo.fullName) == ["keys/digitkey"])
    }

    /// A start on an empty database has lexical search when prepare returns (the indexes are
    /// built on an empty table at once), and a collector's insert, change and delete are
    /// searchable within seconds (the store's task looks for notes at most 4 s apart).
    @Test func anEmptyDatabaseSearchesAtOnceAndFollowsTheCollector() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        #expect(try await fixture.store.wordsIndexReady(), "the indexes of an empty table are built when prepare returns")
        let repos = SyntheticRepos.generate(count: 3, seed: 2)
        try await fixture.insert(repos)
        func settles(_ query: String, _ expected: @escaping ([RepoID]) -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(12)  // three of the task's 4 s gaps: the stage loads the engine
            while ContinuousClock.now < deadline {
                if expected(try await fixture.store.lexicalSearch(query, limit: 3, filter: SearchFilter()).map(\.repo.id)) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        #expect(try await settles(repos[1].fullName) { $0.first == repos[1].id }, "an insert")
        _ = try await fixture.setUp("UPDATE type::record($id) SET description = 'zanzibar lighthouse'", ["id": .string(repos[0].id.rawValue)])
        #expect(try await settles("zanzibar") { $0 == [repos[0].id] }, "a change")
        // Words beyond Latin letters (the analyzer's ASCII filter writes `中文` as `zhong wen `).
        _ = try await fixture.setUp("UPDATE type::record($id) SET description = '中文 描述 工具'", ["id": .string(repos[2].id.rawValue)])
        #expect(try await settles("描述") { $0.first == repos[2].id }, "words in Chinese")
        _ = try await fixture.setUp("DELETE type::record($id)", ["id": .string(repos[0].id.rawValue)])
        #expect(try await settles("zanzibar") { $0.isEmpty }, "a delete")
        // Every note is handled and gone (the last within a poll; 12 s allowed).
        var notes: [SurrealValue] = []
        for _ in 0..<120 {
            notes = try await fixture.client.query("SELECT * FROM embed_star_words_change").last?.array ?? []
            if notes.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(notes.isEmpty, "\(notes)")
    }

    /// A collector that writes many repos at once into a database whose full-text indexes are
    /// built (an `import` of a starred list, a fleet's first collector run after the migration):
    /// the notes are handled in small steps (``SurrealStore/wordsNotesChunk``) and every repo is
    /// searchable soon. 2,000 at once were one transaction before: 3.2.4 took 12 s and 10.9 GB
    /// for it and, with 17,000 imported, was killed for memory.
    @Test func aLargeImportIntoAnIndexedDatabaseIsFollowedInSmallSteps() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        #expect(try await fixture.store.wordsIndexReady())
        let repos = SyntheticRepos.generate(count: 2_500, seed: 9)
        try await fixture.insert(repos)
        let deadline = ContinuousClock.now + .seconds(120)
        var notes = repos.count
        while ContinuousClock.now < deadline {
            notes = Int(try await fixture.client.query("(SELECT count() FROM embed_star_words_change GROUP ALL)[0].count ?? 0").last?.int ?? -1)
            if notes == 0 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(notes == 0, "\(notes) notes left after two minutes")
        let words = try await fixture.client.query("(SELECT count() FROM embed_star_words GROUP ALL)[0].count ?? 0").last?.int
        #expect(words == Int64(repos.count), "every imported repo has its words")
        for repo in [repos[0], repos[1_234], repos[2_499]] {
            let found = try await fixture.store.lexicalSearch(repo.fullName, limit: 5, filter: SearchFilter()).map(\.repo.id)
            #expect(found.first == repo.id, "\(repo.fullName): \(found)")
        }
    }
}
