import EmbedStarCore
import SurrealClient

/// The HNSW index over the vectors. SurrealDB's index holds one dimension, so it is built only
/// once every stored vector has the same one (the queue ran dry), and dropped when a new model
/// writes vectors of another dimension; until then search scans.
extension SurrealStore {
    static let indexName = "embed_star_hnsw"

    /// Loads what the database says about the index (once per process).
    func loadIndexState() async throws {
        let rows = try await client.query("SELECT VALUE dimensions FROM ONLY embed_star_meta:hnsw")
        indexedDimensions.withLock { $0 = rows.first?.int.map(Int.init) }
    }

    func maintainIndex() async throws {
        let now = ContinuousClock.now
        let due = indexCheckedAt.withLock { last -> Bool in
            if let last, now - last < .seconds(60) { return false }
            last = now
            return true
        }
        guard due else { return }
        try await loadIndexState()
        let found = try await client.query("""
            LET $one = (SELECT VALUE array::len(embedding) FROM \(configuration.table) WHERE embedding != NONE LIMIT 1)[0];
            LET $other = IF $one = NONE { NONE } ELSE { (SELECT VALUE id FROM \(configuration.table) WHERE embedding != NONE AND array::len(embedding) != $one LIMIT 1)[0] };
            RETURN [$one, $other];
            """)
        guard let pair = found.last?.array, pair.count == 2, let dimensions = pair[0].int, pair[1].isAbsent,
              dimensions > 0, dimensions <= 16_384
        else { return }
        if indexedDimensions.withLock({ $0 }) == Int(dimensions) { return }
        // DIMENSION takes no parameter; the number was checked above. CONCURRENTLY: the engine
        // builds it in the background (at 100k vectors a blocking build outlasts the request timeout).
        _ = try await client.query("""
            DEFINE INDEX OVERWRITE \(Self.indexName) ON \(configuration.table) FIELDS embedding HNSW DIMENSION \(dimensions) DIST COSINE CONCURRENTLY;
            UPSERT embed_star_meta:hnsw SET dimensions = \(dimensions), defined_at = time::now();
            """)
        indexedDimensions.withLock { $0 = Int(dimensions) }
        logger.info("HNSW index defined", metadata: ["dimensions": "\(dimensions)"])
    }

    func dropIndex() async throws {
        _ = try await client.query("""
            REMOVE INDEX IF EXISTS \(Self.indexName) ON \(configuration.table);
            DELETE embed_star_meta:hnsw;
            """)
        indexedDimensions.withLock { $0 = nil }
        indexCheckedAt.withLock { $0 = nil }
        logger.info("HNSW index dropped: vectors of another dimension are being written")
    }

    /// Search through the index: the `limit` nearest by cosine, then filtered.
    func nearestIndexed(_ vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit]? {
        guard indexedDimensions.withLock({ $0 }) == vector.count else { return nil }
        let candidates = filter.language == nil && filter.model == nil ? limit : limit * 10
        // KNN sizes take no parameters; both are integers computed here.
        let sql = """
            SELECT *, vector::distance::knn() AS distance OMIT embedding FROM \(configuration.table) \
            WHERE embedding <|\(candidates),\(max(40, candidates * 2))|> $q ORDER BY distance
            """
        let rows = try await client.query(sql, ["q": .floats(vector)]).first?.array ?? []
        var hits: [SearchHit] = []
        for row in rows {
            guard case .success(let repo) = Repo.decode(row.json, fallbackName: "search result") else { continue }
            if let language = filter.language, repo.language?.lowercased() != language.lowercased() { continue }
            if let model = filter.model, row["embedding_model"]?.string != model { continue }
            let distance: Double
            switch row["distance"] {
            case .double(let value): distance = value
            case .int(let value): distance = Double(value)
            default: continue
            }
            hits.append(SearchHit(repo: repo, score: 1 - distance))
            if hits.count == limit { break }
        }
        return hits
    }
}
