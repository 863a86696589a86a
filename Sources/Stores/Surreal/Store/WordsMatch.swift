import EmbedStarCore
import SurrealClient

/// A words record that holds some of a query's terms, as SurrealDB 2.x answers it
/// (``SurrealDialect/keepsWordsAsTerms``), and the ranking of such records by BM25 that the
/// engine does itself on 3.x.
struct WordsMatch {
    /// The repo's record id.
    var repo: SurrealValue
    /// For each searched field (``LexicalWords/searched``), the query's terms it holds.
    var terms: [Set<String>]
    /// For each searched field, how many terms it holds in all.
    var lengths: [Double]

    /// Whether the field `field` holds every term of `form` (a form of several terms, such as
    /// `TomlKit`'s `toml` and `kit`, matches only a field holding them all).
    func holds(_ form: [String], in field: Int) -> Bool {
        !form.isEmpty && form.allSatisfy(terms[field].contains)
    }

    /// Ranks `matches` for a query whose words typed are `forms` (for each word, the terms of
    /// each of its forms): those matching every word first (`every`), then those matching some
    /// (`some`), each best first, ties by record id. A record matches a word when one field
    /// holds every term of one of its forms; its score is the sum, over the forms it matches
    /// and the fields that match them, of the field's weight times the BM25 scores of the
    /// form's terms there, each term counted once. Frequencies and average lengths come from
    /// `statistics` (every record holding a query term: `matches` may be filtered), among
    /// `documents` documents (at least as many as `statistics` holds).
    static func rank(_ matches: [WordsMatch], forms: [[[String]]], statistics: [WordsMatch], documents: Double, weights: [Double])
        -> (every: [(repo: SurrealValue, score: Double)], some: [(repo: SurrealValue, score: Double)])
    {
        let fields = weights.indices
        var containing = fields.map { _ in [String: Double]() }
        var averageLength = fields.map { _ in 0.0 }
        for match in statistics {
            for field in fields {
                for term in match.terms[field] { containing[field][term, default: 0] += 1 }
                averageLength[field] += match.lengths[field]
            }
        }
        let documents = max(documents, Double(statistics.count))
        if !statistics.isEmpty { averageLength = averageLength.map { $0 / Double(statistics.count) } }
        var every: [(repo: SurrealValue, score: Double, key: String)] = []
        var some: [(repo: SurrealValue, score: Double, key: String)] = []
        for match in matches {
            var score = 0.0
            var matched = 0
            for word in forms {
                var found = false
                for form in word {
                    for field in fields where match.holds(form, in: field) {
                        found = true
                        for term in form {
                            score += weights[field] * LexicalIndex.bm25(
                                frequency: 1, length: match.lengths[field], averageLength: averageLength[field],
                                documents: documents, containing: containing[field][term] ?? 1)
                        }
                    }
                }
                if found { matched += 1 }
            }
            guard matched > 0 else { continue }
            let ranked = (repo: match.repo, score: score, key: match.repo.recordID?.description ?? "\(match.repo)")
            if matched == forms.count { every.append(ranked) } else { some.append(ranked) }
        }
        func order(_ list: [(repo: SurrealValue, score: Double, key: String)]) -> [(repo: SurrealValue, score: Double)] {
            list.sorted { $0.score != $1.score ? $0.score > $1.score : $0.key < $1.key }.map { ($0.repo, $0.score) }
        }
        return (order(every), order(some))
    }
}
