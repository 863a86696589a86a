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

    /// The query's terms the record holds, in any field.
    var held: Set<String> { terms.reduce(into: []) { $0.formUnion($1) } }

    /// Ranks `matches` for a query whose words typed are `forms` (for each word, the terms of
    /// each of its forms): those matching every word first (`every`), then those matching some
    /// (`some`), each best first, ties by record id. A record matches a word when it holds every
    /// term of one of its forms (`TomlKit`: `toml` and `kit`, or `tomlkit`). The score is BM25
    /// over the whole record, as SQLite's FTS5 ranks a row of several columns: for each query
    /// term the record holds, its weighted frequency is the sum of the weights of the fields
    /// holding it (each field counting it once), the record's length the sum of its fields'
    /// lengths, and the term's rarity its share of the records (not of one field's: a common
    /// word in a name, `python`, is no rarer for being in few names). Frequencies and the
    /// average length come from `statistics` (every record holding a query term: `matches`
    /// may be filtered), among `documents` documents (at least as many as `statistics` holds).
    static func rank(_ matches: [WordsMatch], forms: [[[String]]], statistics: [WordsMatch], documents: Double, weights: [Double])
        -> (every: [(repo: SurrealValue, score: Double)], some: [(repo: SurrealValue, score: Double)])
    {
        var containing: [String: Double] = [:]
        var totalLength = 0.0
        for match in statistics {
            for term in match.held { containing[term, default: 0] += 1 }
            totalLength += match.lengths.reduce(0, +)
        }
        let documents = max(documents, Double(statistics.count))
        let averageLength = statistics.isEmpty ? 1 : totalLength / Double(statistics.count)
        let queryTerms = Set(forms.flatMap { $0.flatMap { $0 } })
        var every: [(repo: SurrealValue, score: Double, key: String)] = []
        var some: [(repo: SurrealValue, score: Double, key: String)] = []
        for match in matches {
            let held = match.held
            let matched = forms.filter { word in word.contains { !$0.isEmpty && held.isSuperset(of: $0) } }.count
            guard matched > 0 else { continue }
            let length = match.lengths.reduce(0, +)
            var score = 0.0
            for term in queryTerms {
                let frequency = zip(match.terms, weights).reduce(0.0) { $0 + ($1.0.contains(term) ? $1.1 : 0) }
                guard frequency > 0 else { continue }
                score += LexicalIndex.bm25(frequency: frequency, length: length, averageLength: averageLength,
                                           documents: documents, containing: containing[term] ?? 1)
            }
            let ranked = (repo: match.repo, score: score, key: match.repo.recordID?.description ?? "\(match.repo)")
            if matched == forms.count { every.append(ranked) } else { some.append(ranked) }
        }
        func order(_ list: [(repo: SurrealValue, score: Double, key: String)]) -> [(repo: SurrealValue, score: Double)] {
            list.sorted { $0.score != $1.score ? $0.score > $1.score : $0.key < $1.key }.map { ($0.repo, $0.score) }
        }
        return (order(every), order(some))
    }
}
