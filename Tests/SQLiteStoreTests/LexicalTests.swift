import EmbedStarApp
import EmbedStarCore
@testable import EmbedStarSQLiteStore
import Foundation
import GRDB
import Testing

@Suite struct SQLiteLexicalTests {
    /// A database filled before the lexical index existed (schema 7, as every database before
    /// this version): the migration indexes what is stored, and the triggers follow the
    /// collector's writes from then on, including a delete made straight in SQL.
    @Test func theMigrationIndexesAFilledDatabaseAndTheTriggersFollowTheCollector() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let old = SQLiteStore(directory: folder)
        try await old.migrate(through: 7)
        let repos = SyntheticRepos.generate(count: 300, seed: 3)
        try await old.upsert(repos)
        // A record that is not JSON: the migration must index around it, not stop on it.
        try await old.execute("UPDATE repo SET record = '{\"full_name\": 42' WHERE id = '\(repos[5].id.rawValue)'")
        await old.shutdown()

        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        #expect(try await rowCount(store, "repo_words") == 300)
        let target = repos[17]
        let byName = try await store.lexicalSearch(target.fullName, limit: 5, filter: SearchFilter())
        #expect(byName.first?.repo.id == target.id, "a repo stored before the index is found by its name")

        try await store.execute("DELETE FROM repo WHERE id = '\(target.id.rawValue)'")
        #expect(try await rowCount(store, "repo_words") == 299)
        let gone = try await store.lexicalSearch(target.fullName, limit: 5, filter: SearchFilter())
        #expect(!gone.contains { $0.repo.id == target.id })
        try await store.execute("""
            INSERT INTO repo (id, record, full_name, language) VALUES ('repo:straight', '{"id":"repo:straight","full_name":"sql/written-straight","name":"written-straight","description":"inserted by a collector in plain SQL"}', 'sql/written-straight', NULL)
            """)
        #expect(try await store.lexicalSearch("collector plain", limit: 3, filter: SearchFilter()).first?.repo.id == RepoID("repo:straight"))
        // A collector replacing a row (INSERT OR REPLACE: no delete trigger fires) leaves no
        // words of the old row behind.
        let replaced = repos[8]
        let before = try await rowCount(store, "repo_words")
        try await store.execute("""
            INSERT OR REPLACE INTO repo (id, record, full_name, language) VALUES ('\(replaced.id.rawValue)', '{"id":"\(replaced.id.rawValue)","full_name":"new/zzreplacement","name":"zzreplacement"}', 'new/zzreplacement', NULL)
            """)
        #expect(try await rowCount(store, "repo_words") == before)
        #expect(try await store.lexicalSearch("zzreplacement", limit: 3, filter: SearchFilter()).map(\.repo.id) == [replaced.id])
        #expect(!(try await store.lexicalSearch(replaced.fullName, limit: 50, filter: SearchFilter())).contains { $0.repo.fullName == replaced.fullName })
        // The collector writing a record that is not JSON is not refused by the index's trigger.
        try await store.execute("UPDATE repo SET record = 'not json' WHERE id = '\(repos[6].id.rawValue)'")
        await store.shutdown()
    }

    @Test func reposWithEveryWordComeFirstAndAWordTypedWithCapitalsIsOneWord() async throws {
        let expressions = try #require(SQLiteLexical.expressions("TomlKit for rust-lang"))
        #expect(expressions.all == #"("tomlkit" OR "toml" OR "kit") AND ("rust") AND ("lang")"#)
        #expect(expressions.words == 3)
        #expect(SQLiteLexical.expressions("  ,, ") == nil)

        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        try await store.upsert([
            Repo(id: RepoID("repo:name"), fullName: "a/json", description: "Bindings"),
            Repo(id: RepoID("repo:all"), fullName: "b/thing", description: "A fast json parser"),
            Repo(id: RepoID("repo:other"), fullName: "c/other", description: "Unrelated"),
        ])
        let hits = try await store.lexicalSearch("fast json parser", limit: 5, filter: SearchFilter())
        #expect(hits.map(\.repo.id) == [RepoID("repo:all"), RepoID("repo:name")], "every word first, then any")
        #expect(hits.count == 2 && hits[0].score > hits[1].score)
        #expect(try await store.lexicalSearch("fast json parser", limit: 1, filter: SearchFilter()).map(\.repo.id) == [RepoID("repo:all")])
        await store.shutdown()
    }
}
