import EmbedStarCore
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Testing

private func repo(_ id: String, _ fullName: String, _ description: String = "") -> Repo {
    Repo(id: RepoID("repo:\(id)"), fullName: fullName, description: description)
}

@Suite struct WordsTests {
    @Test func namesSplitAtPunctuationAndCaseAndWordsMeetAtTheirStems() {
        #expect(Words.plain("rust-serde-json") == ["rust", "serde", "json"])
        #expect(Words.plain("serde_json v1.0") == ["serde", "json", "v1", "0"])
        #expect(Words.plain("TomlParser") == ["toml", "parser"])
        #expect(Words.plain("HTTPServer") == ["httpserver"], "a run of capitals stays one word")
        #expect(Words.plain("Café Crème") == ["café", "crème"])
        #expect(Words.queryTerms("TomlParser for rust-lang") == ["tomlparser", "rust", "lang", "toml", "parser"], "stop words out")
        #expect(Words.queryTerms("The") == ["the"], "unless nothing else is left")
        #expect(Set(["parser", "parsers", "parsing", "parsed", "parse"].map(Words.stem)).count == 1)
        #expect(Words.stem("libraries") == Words.stem("library"))
        #expect(Words.stem("class") == "class" && Words.stem("css") == "css" && Words.stem("running") == "run")
    }
}

@Suite struct HybridSearchTests {
    let a = repo("a", "humanize/humanize", "Python humanize utilities")
    let b = repo("b", "x/nice-numbers", "Turn numbers into friendly text")
    let c = repo("c", "y/other", "Something else")
    let d = repo("d", "z/readable", "Readable sizes and times")

    @Test func aRepoTheQueryNamesComesFirst() {
        let vector = [SearchHit(repo: b, score: 0.9), SearchHit(repo: d, score: 0.8), SearchHit(repo: a, score: 0.7)]
        let lexical = [SearchHit(repo: c, score: 9), SearchHit(repo: a, score: 5)]
        let hits = HybridSearch.fuse(query: "Humanize", vector: vector, lexical: lexical, limit: 3)
        #expect(hits.first?.repo.id == a.id)
        #expect(hits.first?.exactName == true && hits.first?.foundBy == ["vector", "lexical"])
        #expect(hits.first?.vectorRank == 3 && hits.first?.lexicalRank == 2 && hits.first?.vectorScore == 0.7)
        #expect(hits.count == 3)
    }

    @Test func bothSidesBeatOneAndRanksDecideTheRest() {
        // b is second on both sides; d first only on the vector, c first only on the words.
        let vector = [SearchHit(repo: d, score: 0.9), SearchHit(repo: b, score: 0.8)]
        let lexical = [SearchHit(repo: c, score: 12), SearchHit(repo: b, score: 11)]
        let even = HybridSearch.Fusion(k: 60)
        let hits = HybridSearch.fuse(query: "friendly numbers please", vector: vector, lexical: lexical, limit: 10, fusion: even)
        #expect(hits.map(\.repo.id) == [b.id, d.id, c.id], "ties between sides keep the vector's first")
        #expect(abs(hits[0].score - 2.0 / 62) < 1e-12)
        // A query of one or two words weighs the words more.
        let shortWeight = HybridSearch.Fusion(k: 5, shortQueryLexicalWeight: 8)
        let short = HybridSearch.fuse(query: "friendly", vector: vector, lexical: lexical, limit: 10, fusion: shortWeight)
        #expect(short.map(\.repo.id) == [c.id, b.id, d.id], "the words' first hit leads a short query")
        #expect(HybridSearch.Fusion.standard.lexicalWeight(for: "numbers") == 4)
        #expect(HybridSearch.Fusion.standard.lexicalWeight(for: "a library for numbers") == 1)
        // Weights tilt the fusion.
        let words = HybridSearch.fuse(query: "x", vector: vector, lexical: lexical, limit: 10, fusion: .init(k: 60, vectorWeight: 1, lexicalWeight: 3))
        #expect(words.map(\.repo.id).prefix(2) == [b.id, c.id])
    }

    /// A query whose every word is a whole part of a repo's name (`numbers` of `nice-numbers`)
    /// puts that repo after the exact names and before the rest, whatever the ranks; a word
    /// inside a part (`number`) or a query with a word the name lacks does not.
    @Test func aRepoWhoseNameHasTheQuerysWordsAsPartsComesNext() {
        let e = repo("e", "w/numbers", "Exactly named")
        let vector = [SearchHit(repo: d, score: 0.9), SearchHit(repo: c, score: 0.8), SearchHit(repo: b, score: 0.7)]
        let lexical = [SearchHit(repo: c, score: 12), SearchHit(repo: d, score: 11), SearchHit(repo: e, score: 2), SearchHit(repo: b, score: 1)]
        let hits = HybridSearch.fuse(query: "Numbers", vector: vector, lexical: lexical, limit: 10)
        #expect(hits.map(\.repo.id) == [e.id, b.id, c.id, d.id], "the exact name, then the name part, then by score")
        #expect(hits[0].exactName && hits[1].nameParts && !hits[1].exactName && !hits[2].nameParts)
        #expect(HybridSearch.fuse(query: "number", vector: vector, lexical: lexical, limit: 10).first?.repo.id == c.id, "a part is a whole word")
        #expect(HybridSearch.fuse(query: "numbers nice", vector: vector, lexical: lexical, limit: 10).first?.repo.id == b.id, "every word of the query, in any order")
        #expect(Set(HybridSearch.fuse(query: "the numbers", vector: vector, lexical: lexical, limit: 10).prefix(2).map(\.repo.id)) == [e.id, b.id], "stop words aside")
        #expect(HybridSearch.fuse(query: "?!", vector: vector, lexical: lexical, limit: 10).allSatisfy { !$0.nameParts && !$0.exactName }, "no words: no tier")
        #expect(HybridSearch.fuse(query: "numbers parser", vector: vector, lexical: lexical, limit: 10).prefix(2).map(\.repo.id) == [c.id, d.id],
                "a word the name lacks: ranks decide")
        let off = HybridSearch.Fusion(k: 60, namePartsFirst: false)
        let untiered = HybridSearch.fuse(query: "numbers", vector: vector, lexical: lexical, limit: 10, fusion: off)
        #expect(untiered.map(\.repo.id) == [e.id, d.id, c.id, b.id], "without the tier, the name part ranks by its scores (last)")
        #expect(untiered.last?.nameParts == true, "said whether or not it ranks first")
        let renamed = Repo(id: RepoID("repo:r"), name: "", fullName: "q/old-numbers")
        #expect(HybridSearch.fuse(query: "numbers", vector: [SearchHit(repo: renamed, score: 0.5)], lexical: [], limit: 1).first?.nameParts == true,
                "a record without a name: its full name's last part")
    }

    @Test func modesAskTheStoreForWhatTheyNeed() async throws {
        let store = MockStore(repos: [a, b, c, d])
        try await store.prepare()
        var embedded = 0
        let lexical = try await HybridSearch.search("readable times", mode: .lexical, limit: 5, filter: SearchFilter(), store: store) {
            embedded += 1
            return [1, 0]
        }
        #expect(embedded == 0, "lexical search embeds nothing")
        #expect(lexical.lexicalUnavailable == nil && lexical.hits.first?.repo.id == d.id)
        let hybrid = try await HybridSearch.search("readable times", mode: .hybrid, limit: 5, filter: SearchFilter(), store: store) {
            embedded += 1
            return [1, 0]
        }
        #expect(embedded == 1)
        #expect(hybrid.hits.first?.repo.id == d.id, "no vector stored yet: the words alone")
    }

    @Test func aNameTypedWithOtherCapitalsOrSeparatorsIsStillTheName() {
        let graphQL = repo("g", "graphql/GraphQL", "A query language")
        let serde = repo("s", "serde-rs/serde_json", "JSON for serde")
        #expect(HybridSearch.fuse(query: "graphql", vector: [], lexical: [SearchHit(repo: graphQL, score: 1)], limit: 1).first?.exactName == true)
        #expect(HybridSearch.fuse(query: "Serde JSON", vector: [], lexical: [SearchHit(repo: serde, score: 1)], limit: 1).first?.exactName == true)
        #expect(HybridSearch.fuse(query: "graph", vector: [], lexical: [SearchHit(repo: graphQL, score: 1)], limit: 1).first?.exactName == false)
    }

    struct ProviderDown: Error {}

    @Test func aHybridSearchWhoseQueryCannotBeEmbeddedRanksByWords() async throws {
        let store = MockStore(repos: [a, b, c, d])
        let found = try await HybridSearch.search("readable times", mode: .hybrid, limit: 5, filter: SearchFilter(), store: store) {
            throw ProviderDown()
        }
        #expect(found.vectorFailure is ProviderDown)
        #expect(found.hits.first?.repo.id == d.id && found.hits.first?.foundBy == ["lexical"])
        // Neither side: the vector's error.
        await #expect(throws: ProviderDown.self) {
            _ = try await HybridSearch.search("x", mode: .hybrid, limit: 5, filter: SearchFilter(), store: VectorOnlyStore(inner: store)) {
                throw ProviderDown()
            }
        }
        // Vector mode does not hide it.
        await #expect(throws: ProviderDown.self) {
            _ = try await HybridSearch.search("x", mode: .vector, limit: 5, filter: SearchFilter(), store: store) { throw ProviderDown() }
        }
    }

    @Test func aStoreWithoutLexicalSearchFallsBackToTheVector() async throws {
        let store = VectorOnlyStore(inner: MockStore(repos: [a, b]))
        let found = try await HybridSearch.search("humanize", mode: .hybrid, limit: 5, filter: SearchFilter(), store: store) { [1, 0] }
        #expect(found.lexicalUnavailable != nil)
    }
}

/// A store that has no lexical search (the contract's default).
private struct VectorOnlyStore: ForwardingStore {
    let inner: any RepoStore

    func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        throw LexicalSearchUnsupported(store: "vector-only")
    }
}
