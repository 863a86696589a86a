import EmbedStarCore
import Foundation
import Testing

/// Lexical search: words of every field, stems and name parts, the language filter, and an
/// index that follows the collector's changes. A store without lexical search (it throws
/// ``LexicalSearchUnsupported``) passes these: the contract lets it, and search then ranks by
/// the vector alone.
extension StoreConformance {
    static func lexicalRepos() -> [Repo] {
        [
            Repo(id: RepoID("repo:lex1"), fullName: "serde-rs/rust-serde-json", description: "Strongly typed JSON library",
                 language: "Rust", owner: Repo.Owner(login: "serde-rs"), topics: ["serialization"]),
            Repo(id: RepoID("repo:lex2"), fullName: "acme/tomlkit", description: "Style-preserving parsers for TOML documents",
                 language: "Python", owner: Repo.Owner(login: "acme"), topics: ["toml", "config"]),
            Repo(id: RepoID("repo:lex3"), fullName: "kube/operator-kit", description: "Build controllers quickly",
                 language: "Go", owner: Repo.Owner(login: "kube"), topics: ["kubernetes"]),
            Repo(id: RepoID("repo:lex4"), fullName: "zed/json-tools", description: "Command line helpers",
                 language: "Rust", owner: Repo.Owner(login: "zed"), topics: []),
            Repo(id: RepoID("repo:lex5"), fullName: "café/crème", description: "Une bibliothèque de café",
                 language: nil, owner: Repo.Owner(login: "café"), topics: []),
        ]
    }

    /// The store's lexical hits, or nil when it has no lexical search (a store whose lexical
    /// search is not ready, `reason` set, fails the check: these run on a store just prepared).
    func lexical(_ store: any RepoStore, _ query: String, limit: Int = 10, language: String? = nil) async throws -> [RepoID]? {
        do {
            return try await store.lexicalSearch(query, limit: limit, filter: SearchFilter(language: language)).map(\.repo.id)
        } catch let error as LexicalSearchUnsupported where error.reason == nil {
            return nil
        }
    }

    /// Waits (up to 15 s) until `query` finds `id`: a store may index a moment after the write
    /// (SurrealDB's words are rewritten by a task of the store's, within seconds).
    func awaitLexical(_ store: any RepoStore, _ query: String, finds id: RepoID) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while let found = try await lexical(store, query), !found.contains(id) {
            guard ContinuousClock.now < deadline else {
                Issue.record("'\(query)' did not find \(id) within 15 s of the write: \(found)")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func lexicalSearchFindsWordsOfEveryField(_ store: any RepoStore, _ check: StoreCheck) async throws {
        try await store.upsert(Self.lexicalRepos())
        try await awaitLexical(store, "crème", finds: RepoID("repo:lex5"))
        guard let byNamePart = try await lexical(store, "serde") else { return }
        #expect(byNamePart.first == RepoID("repo:lex1"), "\(check): a part of a dashed name is a word")
        #expect(try await lexical(store, "parser")?.first == RepoID("repo:lex2"), "\(check): words are stemmed (parser, parsers)")
        #expect(try await lexical(store, "KUBERNETES")?.first == RepoID("repo:lex3"), "\(check): topics, case folded")
        #expect(try await lexical(store, "zed")?.first == RepoID("repo:lex4"), "\(check): the owner")
        #expect(try await lexical(store, "TomlKit")?.first == RepoID("repo:lex2"), "\(check): a name as typed with capitals")
        #expect(try await lexical(store, "café")?.first == RepoID("repo:lex5"), "\(check): words beyond ASCII")
        // A name match outranks a description match: `json` names lex4 and describes lex1.
        let json = try #require(try await lexical(store, "json"))
        #expect(Set(json.prefix(2)) == [RepoID("repo:lex1"), RepoID("repo:lex4")], "\(check): both repos with the word")
        #expect(try await lexical(store, "json", language: "rust")?.count == 2, "\(check): the language filter ignores case")
        #expect(try await lexical(store, "json", language: "Go") == [], "\(check): the language filter")
        #expect(try await lexical(store, "nothing-like-this-anywhere") == [], "\(check): no word, no hit")
        #expect(try await lexical(store, "json", limit: 1)?.count == 1, "\(check): the limit")
        // Syntax a user may type is words, not operators.
        #expect(try await lexical(store, "\"json\" OR NEAR(toml) * :") != nil)
        let scores = try await store.lexicalSearch("json toml", limit: 10, filter: SearchFilter())
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0.score >= $1.score }, "\(check): best first")
    }

    func lexicalSearchFollowsTheCollector(_ store: any RepoStore, _ check: StoreCheck) async throws {
        var repos = Self.lexicalRepos()
        try await store.upsert(repos)
        try await awaitLexical(store, "crème", finds: RepoID("repo:lex5"))
        guard try await lexical(store, "controllers") == [RepoID("repo:lex3")] else {
            if try await lexical(store, "controllers") != nil { Issue.record("\(check): the description's word") }
            return
        }
        // Not embedded yet, embedded, or changed: every repo is searchable by its current words.
        let claimed = try await claim(store, "a", limit: 2)
        _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
        repos[2].description = "Reconcile loops for operators"
        try await store.upsert([repos[2]])
        try await awaitLexical(store, "reconcile", finds: repos[2].id)
        #expect(try await lexical(store, "controllers") == [], "\(check): the old text's words are gone")
        #expect(try await lexical(store, "reconcile") == [RepoID("repo:lex3")], "\(check): the new text's words are found")
        for repo in repos where repo.id != repos[2].id {
            #expect(try await lexical(store, repo.fullName)?.contains(repo.id) == true, "\(check): \(repo.id) by its full name")
        }
    }

    /// `lexicalStatus` says what `lexicalSearch` does: `ready` exactly when it answers,
    /// `unavailable` exactly when it has none; once the words caught up with the collector
    /// (within 15 s), as many repos' words as repos stored and no change waiting.
    func lexicalStatusCountsWhatIsStored(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = Self.lexicalRepos()
        try await store.upsert(repos)
        try await awaitLexical(store, "crème", finds: RepoID("repo:lex5"))
        let deadline = ContinuousClock.now + .seconds(15)
        var status = try await store.lexicalStatus()
        while status.state == .ready, (status.waiting ?? 0) > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            status = try await store.lexicalStatus()
        }
        let searches: Bool
        do {
            _ = try await store.lexicalSearch("json", limit: 3, filter: SearchFilter())
            searches = true
        } catch is LexicalSearchUnsupported {
            searches = false
        }
        #expect((status.state == .ready) == searches, "\(check): ready (\(status.line)) exactly when lexical search answers")
        guard status.state == .ready else {
            #expect(status.state == .unavailable && status.detail != nil, "\(check): a store just prepared is ready or has none, and says why not: \(status.line)")
            return
        }
        let total = try await store.stats(modelIdentity: "m").total
        #expect(status.indexed.map { $0 == total } ?? true, "\(check): every stored repo's words: \(status.line), \(total) repos")
        #expect(status.waiting.map { $0 == 0 } ?? true, "\(check): no change waiting once the words caught up: \(status.line)")
        #expect(status.detail == nil, "\(check): no reason when ready: \(status.line)")
    }
}
