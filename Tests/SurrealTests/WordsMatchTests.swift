@testable import EmbedStarSurrealStore
import EmbedStarCore
import SurrealClient
import Testing

/// The ranking embed-star does for SurrealDB 2.x's lexical search (the engine does it on 3.x).
@Suite struct WordsMatchTests {
    static func match(_ key: Int, title: Set<String> = [], body: Set<String> = [], lengths: [Double] = [4, 10]) -> WordsMatch {
        WordsMatch(repo: .recordID(RecordID(table: "repo", id: .int(Int64(key)))), terms: [title, body], lengths: lengths)
    }

    static func keys(_ list: [(repo: SurrealValue, score: Double)]) -> [Int64] {
        list.compactMap { $0.repo.recordID?.id.int }
    }

    @Test func reposWithEveryWordComeFirstThenReposWithSome() {
        let matches = [
            Self.match(1, title: ["toml"]),
            Self.match(2, title: ["toml"], body: ["parser"]),
            Self.match(3, title: [], body: ["parser"]),
        ]
        let ranked = WordsMatch.rank(matches, forms: [[["toml"]], [["parser"]]], statistics: matches, documents: 100, weights: [3, 1])
        #expect(Self.keys(ranked.every) == [2])
        // A title match weighs more than a body match (weight 3 against 1, before saturation).
        #expect(Self.keys(ranked.some) == [1, 3])
        #expect(ranked.some[0].score > ranked.some[1].score)
    }

    /// A form of several terms (`TomlKit`: `toml`, `kit`) matches a record holding them all;
    /// the word matches through any of its forms (`tomlkit`, the name in lower case).
    @Test func aFormOfSeveralTermsNeedsThemAll() {
        let matches = [
            Self.match(1, title: ["toml"], body: ["kit"]),
            Self.match(2, title: ["toml", "kit"]),
            Self.match(3, title: ["tomlkit"]),
            Self.match(4, title: ["toml"]),
        ]
        let ranked = WordsMatch.rank(matches, forms: [[["tomlkit"], ["toml", "kit"]]], statistics: matches, documents: 100, weights: [3, 1])
        #expect(Set(Self.keys(ranked.every)) == [1, 2, 3])
        #expect(ranked.some.isEmpty, "repo 4 holds toml without kit: no match")
    }

    /// A word common in the corpus is not rare for being in few names: `python` in one name and
    /// thirty descriptions weighs less than `codec`, in one description only. (Ranked field by
    /// field, the name's `python` won: that put repos whose names hold a query's common words
    /// above the repo a sentence describes.)
    @Test func aCommonWordInANameIsNotRare() {
        let named = Self.match(1, title: ["python"]), described = Self.match(2, body: ["codec"])
        let statistics = [named, described] + (10..<40).map { Self.match($0, body: ["python"]) }
        let ranked = WordsMatch.rank([named, described], forms: [[["python"]], [["codec"]]], statistics: statistics, documents: 1_000, weights: [3, 1])
        #expect(Self.keys(ranked.some) == [2, 1])
    }

    /// A rare term scores more than a common one; a shorter field more than a longer one.
    @Test func rarerTermsAndShorterFieldsScoreMore() {
        var statistics = (10..<60).map { Self.match($0, title: ["rust"]) }
        let rare = Self.match(1, title: ["serd"]), common = Self.match(2, title: ["rust"])
        let long = Self.match(3, title: ["serd"], lengths: [12, 10])
        statistics += [rare, common, long]
        let ranked = WordsMatch.rank([rare, common, long], forms: [[["serd"]], [["rust"]]], statistics: statistics, documents: 1_000, weights: [3, 1])
        #expect(Self.keys(ranked.some) == [1, 3, 2])
        #expect(ranked.every.isEmpty)
    }

    /// The frequencies come from every record holding a term, not from the filtered matches:
    /// filtering by language does not change a score.
    @Test func scoresDoNotDependOnTheFilter() {
        let all = (1...20).map { Self.match($0, title: $0 <= 5 ? ["json"] : ["yaml"]) }
        let whole = WordsMatch.rank(all, forms: [[["json"]]], statistics: all, documents: 20, weights: [3, 1])
        let filtered = WordsMatch.rank(Array(all.prefix(2)), forms: [[["json"]]], statistics: all, documents: 20, weights: [3, 1])
        #expect(filtered.every.map(\.score) == Array(whole.every.prefix(2).map(\.score)))
        #expect(Self.keys(whole.every) == [1, 2, 3, 4, 5], "ties in record order")
    }
}
