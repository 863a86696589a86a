import Foundation

/// Which ranking `search` uses.
public enum SearchMode: String, Sendable, CaseIterable {
    /// Both, fused (``HybridSearch``): names and words as well as meaning.
    case hybrid
    /// The vector alone: meaning.
    case vector
    /// The words alone (BM25 over name, owner, full name, description, topics, language).
    case lexical
}

/// One repo a search found, with what found it.
public struct FusedHit: Sendable {
    public var repo: Repo
    /// The fused score (reciprocal ranks; higher first). In `vector` mode the cosine, in
    /// `lexical` mode the store's BM25 score.
    public var score: Double
    /// Its rank (1-based) among the vector's candidates, if they had it.
    public var vectorRank: Int?
    /// Its cosine to the query, if the vector found it.
    public var vectorScore: Double?
    /// Its rank (1-based) among the lexical candidates, if they had it.
    public var lexicalRank: Int?
    /// The query is the repo's name or full name, word for word (`serde json` names
    /// `serde-rs/serde_json`): such hits come first.
    public var exactName: Bool
    /// Every word of the query (stop words aside) is a whole part of the repo's name
    /// (`thumbnail` in `sorl-thumbnail`, not in `thumbnailator`): with
    /// ``HybridSearch/Fusion/namePartsFirst`` such hits come right after the exact names.
    public var nameParts: Bool

    public init(repo: Repo, score: Double, vectorRank: Int? = nil, vectorScore: Double? = nil, lexicalRank: Int? = nil, exactName: Bool = false,
                nameParts: Bool = false) {
        self.repo = repo
        self.score = score
        self.vectorRank = vectorRank
        self.vectorScore = vectorScore
        self.lexicalRank = lexicalRank
        self.exactName = exactName
        self.nameParts = nameParts
    }

    /// `vector`, `lexical`, or both, for `--json`.
    public var foundBy: [String] {
        (vectorRank == nil ? [] : ["vector"]) + (lexicalRank == nil ? [] : ["lexical"])
    }
}

/// Search in one place: asks the store for the vector and the lexical candidates and fuses
/// them. Reciprocal-rank fusion (each list adds `weight / (k + rank)`), with repos the query
/// names exactly first: neither side's scores need calibrating against the other's, and a repo
/// both sides rank well beats one only one side found.
public enum HybridSearch {
    /// The fusion's constants. `k` damps the difference between the first ranks; the weights
    /// tilt it towards one side; a query of at most ``shortQueryWords`` words (what people type
    /// when they know a name, or part of one) weighs the words by ``shortQueryLexicalWeight``.
    public struct Fusion: Sendable, Hashable {
        public var k: Double
        public var vectorWeight: Double
        public var lexicalWeight: Double
        public var shortQueryLexicalWeight: Double?
        public var shortQueryWords: Int
        /// Repos whose name has every word of the query as a whole part (``FusedHit/nameParts``)
        /// rank after the exact names and before the rest, each group by its fused score.
        public var namePartsFirst: Bool

        public init(k: Double = 60, vectorWeight: Double = 1, lexicalWeight: Double = 1, shortQueryLexicalWeight: Double? = nil,
                    shortQueryWords: Int = 2, namePartsFirst: Bool = false) {
            self.k = k
            self.vectorWeight = vectorWeight
            self.lexicalWeight = lexicalWeight
            self.shortQueryLexicalWeight = shortQueryLexicalWeight
            self.shortQueryWords = shortQueryWords
            self.namePartsFirst = namePartsFirst
        }

        /// The words' weight for `query`.
        public func lexicalWeight(for query: String) -> Double {
            guard let short = shortQueryLexicalWeight, Words.plain(query).count <= shortQueryWords else { return lexicalWeight }
            return short
        }

        /// Chosen on the `tune` half of `bench/retrieval`'s real queries (12,577 Debian-packaged
        /// GitHub projects; docs/benchmarks.md) and reported on the held-out half: repos whose
        /// name holds every word of the query as a part first (after exact names), then
        /// reciprocal ranks with `k` 60, the words weighed 4 to 1 for a query of one or two words.
        public static let standard = Fusion(k: 60, vectorWeight: 1, lexicalWeight: 1, shortQueryLexicalWeight: 4, shortQueryWords: 2,
                                            namePartsFirst: true)
    }

    /// How many candidates each side gives for `limit` hits.
    public static func candidates(for limit: Int) -> Int { max(50, limit * 5) }

    /// Searches `store` for `query`.
    /// - Parameters:
    ///   - embed: the query's vector (the provider, with the model's query prefix); called only
    ///     when the mode needs it.
    ///   - filter: the language, and the model identity the vectors must come from.
    /// - Returns: the hits; why the store did not answer the lexical side, when it did not (a
    ///   store without lexical search, or whose index is still being built, gives the vector's
    ///   hits in hybrid mode, and nothing in lexical mode); and
    ///   in hybrid mode, why the vector side could not answer (the provider down, say), when the
    ///   words answered alone.
    public static func search(
        _ query: String, mode: SearchMode, limit: Int, filter: SearchFilter, store: any RepoStore,
        fusion: Fusion = .standard, embed: () async throws -> [Float]
    ) async throws -> (hits: [FusedHit], lexicalUnavailable: LexicalSearchUnsupported?, vectorFailure: (any Error)?) {
        let wanted = mode == .hybrid ? candidates(for: limit) : limit
        var vector: [SearchHit] = []
        var vectorFailure: (any Error)?
        if mode == .vector {
            vector = try await store.nearest(to: try await embed(), limit: wanted, filter: filter)
        } else if mode == .hybrid {
            do {
                vector = try await store.nearest(to: try await embed(), limit: wanted, filter: filter)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                vectorFailure = error
            }
        }
        var lexical: [SearchHit] = []
        var lexicalUnavailable: LexicalSearchUnsupported?
        if mode != .vector {
            do {
                lexical = try await store.lexicalSearch(query, limit: wanted, filter: SearchFilter(language: filter.language))
            } catch let error as LexicalSearchUnsupported {
                lexicalUnavailable = error
            }
        }
        switch mode {
        case .vector:
            return (rank(vector, query: query, score: \.score, vector: true), nil, nil)
        case .lexical:
            return (rank(lexical, query: query, score: \.score, vector: false), lexicalUnavailable, nil)
        case .hybrid:
            // Neither side answered: the vector's error is the one to see.
            if let vectorFailure, lexicalUnavailable != nil { throw vectorFailure }
            return (fuse(query: query, vector: vector, lexical: lexical, limit: limit, fusion: fusion), lexicalUnavailable, vectorFailure)
        }
    }

    /// Reciprocal-rank fusion of the two candidate lists, exact name matches first, at most
    /// `limit` hits.
    public static func fuse(query: String, vector: [SearchHit], lexical: [SearchHit], limit: Int, fusion: Fusion = .standard) -> [FusedHit] {
        var hits: [RepoID: FusedHit] = [:]
        var order: [RepoID] = []
        let named = nameKey(query)
        let words = partWords(query)
        func hit(_ repo: Repo) -> FusedHit {
            hits[repo.id] ?? FusedHit(repo: repo, score: 0, exactName: isNamed(repo, by: named), nameParts: hasParts(repo, words))
        }
        for (index, candidate) in vector.enumerated() {
            var fused = hit(candidate.repo)
            if hits[candidate.repo.id] == nil { order.append(candidate.repo.id) }
            fused.vectorRank = index + 1
            fused.vectorScore = candidate.score
            fused.score += fusion.vectorWeight / (fusion.k + Double(index + 1))
            hits[candidate.repo.id] = fused
        }
        let lexicalWeight = fusion.lexicalWeight(for: query)
        for (index, candidate) in lexical.enumerated() {
            var fused = hit(candidate.repo)
            if hits[candidate.repo.id] == nil { order.append(candidate.repo.id) }
            fused.lexicalRank = index + 1
            fused.score += lexicalWeight / (fusion.k + Double(index + 1))
            hits[candidate.repo.id] = fused
        }
        let ranked = order.compactMap { hits[$0] }.enumerated().sorted { a, b in
            if a.element.exactName != b.element.exactName { return a.element.exactName }
            if fusion.namePartsFirst, a.element.nameParts != b.element.nameParts { return a.element.nameParts }
            if a.element.score != b.element.score { return a.element.score > b.element.score }
            return a.offset < b.offset
        }
        return ranked.prefix(limit).map(\.element)
    }

    /// One side's hits in its own order, exact name matches first.
    static func rank(_ list: [SearchHit], query: String, score: KeyPath<SearchHit, Double>, vector: Bool) -> [FusedHit] {
        let named = nameKey(query)
        let words = partWords(query)
        let hits = list.enumerated().map { index, candidate in
            FusedHit(repo: candidate.repo, score: candidate[keyPath: score], vectorRank: vector ? index + 1 : nil,
                     vectorScore: vector ? candidate.score : nil, lexicalRank: vector ? nil : index + 1,
                     exactName: isNamed(candidate.repo, by: named), nameParts: hasParts(candidate.repo, words))
        }
        return hits.enumerated().sorted { a, b in
            a.element.exactName != b.element.exactName ? a.element.exactName : a.offset < b.offset
        }.map(\.element)
    }

    /// The query's words, joined: what a name must equal to be named by it.
    static func nameKey(_ text: String) -> String {
        Words.plain(text).joined(separator: " ")
    }

    /// The query's words a name's parts must hold: ``Words/plain(_:)`` without stop words
    /// (unless nothing else is left), each once.
    static func partWords(_ query: String) -> Set<String> {
        Set(Words.telling(Words.plain(query)))
    }

    /// Whether every one of `words` (``partWords(_:)``) is a whole part of the repo's name (as
    /// recorded, or the last part of its full name, which a rename or a record without `name`
    /// may leave as the only one).
    static func hasParts(_ repo: Repo, _ words: Set<String>) -> Bool {
        guard !words.isEmpty else { return false }
        let last = repo.fullName.split(separator: "/").last.map(String.init) ?? ""
        return words.isSubset(of: Words.plain(repo.name)) || words.isSubset(of: Words.plain(last))
    }

    /// Word for word, or letter for letter once spaces are gone: `graphql` names `GraphQL`
    /// (whose words are `graph ql`), `serde json` names `serde_json`.
    static func isNamed(_ repo: Repo, by key: String) -> Bool {
        guard !key.isEmpty else { return false }
        let compact = key.replacingOccurrences(of: " ", with: "")
        return [repo.name, repo.fullName].contains { name in
            let words = nameKey(name)
            return words == key || words.replacingOccurrences(of: " ", with: "") == compact
        }
    }
}
