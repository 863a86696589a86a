import EmbedStarCore
import SurrealClient

/// The HNSW index over the vectors. SurrealDB's index holds one dimension, so it is built only
/// once every stored vector has the same one (the queue ran dry), and dropped when a new model
/// writes vectors of another dimension; until then search scans.
///
/// Search uses the index only once it was checked: when the engine reports it built, a few stored
/// vectors, looked up through it, must each find their own repo first. The instance that defined
/// it records the outcome in `embed_star_meta:hnsw`, so `search` reads one record, not the check.
/// (SurrealDB 2.3.10 fails the check after a backfill by parallel workers: its index answered
/// other repos, at cosine 0.77, for a repo's own vector. Search then scans, exactly.)
extension SurrealStore {
    static let indexName = "embed_star_hnsw"

    /// Loads what the database says about the index (once per process): its dimension when it
    /// passed the check, nil otherwise.
    func loadIndexState() async throws {
        let rows = try await client.query("SELECT dimensions, verified FROM ONLY embed_star_meta:hnsw")
        let record = rows.first ?? .none
        indexedDimensions.withLock { $0 = record["verified"]?.bool == true ? record["dimensions"]?.int.map(Int.init) : nil }
        indexDefinedDimensions.withLock { $0 = record["dimensions"]?.int.map(Int.init) }
    }

    /// The store's idle work: the vector index, defined and checked once the queue ran dry.
    public func maintain(owner: String, modelIdentity model: String) async throws {
        try await maintainIndex(owner: owner)
    }

    /// When the queue ran dry, for `owner` (``maintain(owner:modelIdentity:)``).
    func maintainIndex(owner: String) async throws {
        guard Self.due(indexCheckedAt, every: .seconds(60)) else { return }
        try await loadIndexState()
        if indexDefinedDimensions.withLock({ $0 }) == nil {
            // Not defined while another instance still embeds: each of its writes would wait
            // for the index being built (three instances finishing a backfill together spent
            // half a second on a batch in the tail). Looked at again at the next idle work, so
            // the last instance to finish defines it (a backfill that waited for others does
            // its idle work at the end).
            // Two ranges of the claim index (the planner would otherwise pick the index on
            // `failed` and read every entry).
            let leased = try await client.query("""
                LET $now = time::now();
                RETURN [
                  (SELECT VALUE id FROM \(Migrations.queue) WITH INDEX embed_queue_claim WHERE stale = false AND failed = false AND lease_until > $now AND lease_owner != $owner LIMIT 1)[0],
                  (SELECT VALUE id FROM \(Migrations.queue) WITH INDEX embed_queue_claim WHERE stale = true AND failed = false AND lease_until > $now AND lease_owner != $owner LIMIT 1)[0]
                ];
                """, ["owner": .string(owner)])
            if leased.last?.array?.contains(where: { !$0.isAbsent }) ?? false {
                indexCheckedAt.withLock { $0 = nil }
                return
            }
        }
        let found = try await client.query("""
            LET $one = (SELECT VALUE array::len(embedding) FROM \(configuration.table) WHERE embedding != NONE LIMIT 1)[0];
            LET $other = IF $one = NONE { NONE } ELSE { (SELECT VALUE id FROM \(configuration.table) WHERE embedding != NONE AND array::len(embedding) != $one LIMIT 1)[0] };
            RETURN [$one, $other];
            """)
        guard let pair = found.last?.array, pair.count == 2, let dimensions = pair[0].int, pair[1].isAbsent,
              dimensions > 0, dimensions <= 16_384
        else { return }
        if indexDefinedDimensions.withLock({ $0 }) == Int(dimensions) {
            if indexedDimensions.withLock({ $0 }) == nil { try await verifyIndex(dimensions: Int(dimensions)) }
            return
        }
        // DIMENSION takes no parameter; the number was checked above. CONCURRENTLY: the engine
        // builds it in the background (at 100k vectors a blocking build outlasts the request timeout).
        _ = try await client.query("""
            DEFINE INDEX OVERWRITE \(Self.indexName) ON \(configuration.table) FIELDS embedding HNSW DIMENSION \(dimensions) DIST COSINE CONCURRENTLY;
            UPSERT embed_star_meta:hnsw CONTENT { dimensions: \(dimensions), defined_at: time::now() };
            """)
        indexDefinedDimensions.withLock { $0 = Int(dimensions) }
        indexedDimensions.withLock { $0 = nil }
        logger.info("HNSW index defined; search uses it once it is built and checked", metadata: ["dimensions": "\(dimensions)"])
        try await verifyIndex(dimensions: Int(dimensions))
    }

    /// Once the engine reports the index built: three stored vectors, picked at random, must each
    /// find their own repo (or one with the same vector) first through it. Records the outcome for every instance.
    func verifyIndex(dimensions: Int) async throws {
        let state = try await client.query("INFO FOR INDEX \(Self.indexName) ON \(configuration.table)").last ?? .none
        if let status = state["building"]?["status"]?.string, status != "ready" {
            logger.debug("HNSW index still building", metadata: ["status": "\(status)"])
            return  // looked at again when the queue next runs dry (at most once a minute)
        }
        let probes = try await client.query("""
            SELECT id, embedding FROM \(configuration.table) WHERE embedding != NONE AND array::len(embedding) = $d ORDER BY rand() LIMIT 3
            """, ["d": .int(Int64(dimensions))]).last?.array ?? []
        var missed: [String] = []
        for probe in probes {
            guard let id = probe["id"]?.recordID, let vector = probe["embedding"]?.floatArray else { continue }
            let found = try await client.query("""
                SELECT id, vector::distance::knn() AS distance FROM \(configuration.table) WHERE embedding <|1,40|> $q ORDER BY distance
                """, ["q": .floats(vector)]).first?.array ?? []
            let first = found.first
            let distance: Double? = switch first?["distance"] { case .double(let d): d; case .int(let d): Double(d); default: nil }
            // Another repo with the very same vector is as near: the distance decides.
            if (distance ?? 1) > 1e-3 { missed.append(id.description) }
        }
        let verified = missed.isEmpty && !probes.isEmpty
        _ = try await client.query("UPDATE embed_star_meta:hnsw SET verified = $v, verified_at = time::now() WHERE dimensions = $d",
                                   ["v": .bool(verified), "d": .int(Int64(dimensions))])
        if verified {
            indexedDimensions.withLock { $0 = dimensions }
            logger.info("HNSW index built and checked; search uses it", metadata: ["dimensions": "\(dimensions)"])
        } else {
            let server = try await dialect()
            logger.warning("the server's HNSW index did not find stored vectors as their own nearest; search scans instead", metadata: [
                "missed": "\(missed.joined(separator: ", "))", "server": "\(server)",
            ])
        }
    }

    func dropIndex() async throws {
        _ = try await client.query("""
            REMOVE INDEX IF EXISTS \(Self.indexName) ON \(configuration.table);
            DELETE embed_star_meta:hnsw;
            """)
        indexedDimensions.withLock { $0 = nil }
        indexDefinedDimensions.withLock { $0 = nil }
        indexCheckedAt.withLock { $0 = nil }
        logger.info("HNSW index dropped: vectors of another dimension are being written")
    }

    /// Search through the index: the `limit` nearest by cosine, then filtered.
    func nearestIndexed(_ vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit]? {
        guard indexedDimensions.withLock({ $0 }) == vector.count else { return nil }
        let candidates = filter.language == nil && filter.modelIdentity == nil ? limit : limit * 10
        // KNN sizes take no parameters; both are integers computed here. The search breadth
        // (ef) is at least 100: at 5,000 random vectors, recall@10 was 0.44 at 40 and 0.66 at
        // 100, for 1.4 ms more; on the real model's vectors both found every neighbour
        // (bench/surreal_hnsw.py).
        let sql = """
            SELECT *, vector::distance::knn() AS distance OMIT embedding FROM \(configuration.table) \
            WHERE embedding <|\(candidates),\(max(100, candidates * 2))|> $q ORDER BY distance
            """
        let rows = try await client.query(sql, ["q": .floats(vector)]).first?.array ?? []
        var hits: [SearchHit] = []
        for row in rows {
            guard case .success(let repo) = Repo.decode(row.json, fallbackName: "search result") else { continue }
            if let language = filter.language, repo.language?.lowercased() != language.lowercased() { continue }
            if let model = filter.modelIdentity, row["embedding_model"]?.string != model { continue }
            guard let distance = row["distance"]?.double else { continue }
            hits.append(SearchHit(repo: repo, score: 1 - distance))
            if hits.count == limit { break }
        }
        return hits
    }
}
