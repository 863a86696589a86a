import Foundation

/// BM25 over repos' fields, in memory, rebuilt from the repos it is given: the Mock store's
/// lexical search. Fields weigh differently: a word in the name counts more than one in the
/// description. A query's stop words are left out as the SQLite store leaves them out.
public struct LexicalIndex: Sendable {
    /// The weight of each field's words (name 3, full name and topics 2, the rest 1).
    static let fields: [(weight: Double, text: @Sendable (Repo) -> String)] = [
        (3, { $0.name }), (2, { $0.fullName }), (1, { $0.owner?.login ?? "" }), (1, { $0.description ?? "" }),
        (2, { $0.topics.joined(separator: " ") }), (1, { $0.language ?? "" }),
    ]

    private struct Document: Sendable {
        var repo: Repo
        /// Weighted term frequencies.
        var terms: [String: Double]
        var length: Double
    }

    private var documents: [Document] = []
    private var documentFrequency: [String: Int] = [:]
    private var totalLength = 0.0

    public init(_ repos: some Sequence<Repo>) {
        for repo in repos {
            var terms: [String: Double] = [:]
            var length = 0.0
            for field in Self.fields {
                for stem in Self.terms(field.text(repo)) {
                    terms[stem, default: 0] += field.weight
                    length += field.weight
                }
            }
            for term in terms.keys { documentFrequency[term, default: 0] += 1 }
            totalLength += length
            documents.append(Document(repo: repo, terms: terms, length: length))
        }
    }

    /// The stems of `text`'s words; a word with case changes also whole (`TomlKit`: `toml`,
    /// `kit` and `tomlkit`), so a name typed either way matches.
    static func terms(_ text: String) -> [String] {
        var terms: [String] = []
        for word in text.split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            let parts = Words.plain(String(word))
            terms += parts.map(Words.stem)
            if parts.count > 1 { terms.append(Words.stem(word.lowercased())) }
        }
        return terms
    }

    /// The best `limit` matches of `query` (BM25, k1 1.2, b 0.75), best first; repos no word
    /// of the query matches are left out.
    public func search(_ query: String, limit: Int, where include: (Repo) -> Bool = { _ in true }) -> [SearchHit] {
        let words = Words.queryTerms(query)
        let terms = Set(Self.terms(words.joined(separator: " ")))
        guard !terms.isEmpty, !documents.isEmpty, limit > 0 else { return [] }
        let count = Double(documents.count)
        let averageLength = max(1, totalLength / count)
        var hits: [SearchHit] = []
        for document in documents where include(document.repo) {
            var score = 0.0
            for term in terms {
                guard let frequency = document.terms[term], let containing = documentFrequency[term] else { continue }
                score += Self.bm25(frequency: frequency, length: document.length, averageLength: averageLength,
                                   documents: count, containing: Double(containing))
            }
            if score > 0 { hits.append(SearchHit(repo: document.repo, score: score)) }
        }
        return Array(hits.sorted { $0.score != $1.score ? $0.score > $1.score : $0.repo.id < $1.repo.id }.prefix(limit))
    }

    /// One term's BM25 score in one document (k1 1.2, b 0.75): `frequency` times in a document
    /// of `length` terms, where documents average `averageLength`, and `containing` of
    /// `documents` hold the term. Never below 0 (a term in most documents scores near 0).
    public static func bm25(frequency: Double, length: Double, averageLength: Double, documents: Double, containing: Double) -> Double {
        let idf = log(1 + max(0, documents - containing + 0.5) / (containing + 0.5))
        return idf * frequency * 2.2 / (frequency + 1.2 * (0.25 + 0.75 * length / max(1, averageLength)))
    }
}
