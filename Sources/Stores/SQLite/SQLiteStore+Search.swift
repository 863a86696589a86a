import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Nearest neighbours: the byte codes of the query's dimension scanned in parallel parts, then
/// the best candidates scored exactly from their floats.
extension SQLiteStore {
    public func nearest(to vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        try await nearest(to: vector, limit: limit, filter: filter, exact: false)
    }

    /// `exact`: scores every stored float vector instead of the byte codes (what the codes'
    /// recall is measured against: `embed-star bench-search`).
    public func nearest(to vector: [Float], limit: Int, filter: SearchFilter, exact: Bool) async throws -> [SearchHit] {
        guard limit > 0, !vector.isEmpty else { return [] }
        let query = VectorBlob.normalized(vector)
        guard let query else { return [] }
        // With a model, the scan keeps 4 times the candidates and drops other models' vectors
        // when it reads the records (exact: every vector of the model scoring above the last
        // candidate is among them); when other models' vectors crowd them out, the scan runs
        // again on the model's vectors alone.
        if let hits = try await search(query: query, limit: limit, filter: filter, byModel: false, exact: exact) { return hits }
        return try await search(query: query, limit: limit, filter: filter, byModel: true, exact: exact) ?? []
    }

    /// How many candidates the byte-code scan keeps for `kept` results: their float vectors are
    /// then scored exactly. Ten times as many measured recall@10 of 1.0 against the exact scan
    /// at 100,000 random vectors (bench/sqlite-search), whose scores lie closer together than a
    /// real model's.
    static func candidates(for kept: Int) -> Int { max(kept * 10, 100) }

    /// The cosine scan, in `searchParts` ranges of the vector table read side by side on the
    /// pool's reader connections: over the byte codes (a quarter of the floats' bytes), the best
    /// `candidates(for:)` then scored exactly from their float vectors, or over the floats
    /// (`exact`). Nil when candidates of other models left fewer than `limit` hits while more
    /// vectors were scored than kept (the caller scans by model instead).
    private func search(query: [Float], limit: Int, filter: SearchFilter, byModel: Bool, exact: Bool) async throws -> [SearchHit]? {
        let pool = try database()
        let kept = filter.modelIdentity != nil && !byModel ? limit * 4 : limit
        let source: VectorSource = exact ? .floats(query) : .codes(VectorCode(query))
        let wanted = exact ? kept : Self.candidates(for: kept)
        // The range of the table's keys: two lookups, each its own query. SQLite looks up a
        // lone `min()` or `max()` in the key's order, but reads the whole table for both in one
        // (40 ms of every search at 100,000 vectors), as it would for `count(*)`.
        let bounds = try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT (SELECT min(repo) FROM repo_vector) AS low, (SELECT max(repo) FROM repo_vector) AS high")
                .flatMap { row -> (low: Int64, high: Int64, packed: Bool)? in
                    guard let low = row["low"] as Int64?, let high = row["high"] as Int64? else { return nil }
                    return (low, high, try CodeFile.belongs(db))
                }
        }
        guard let bounds else { return [] }
        let parts = Int(max(1, min(Int64(Self.searchParts), (bounds.high - bounds.low) / 20_000)))
        // Without a filter on the repo's row, the codes are read packed (`CodeFile`), and the
        // ranges are ranges of blocks.
        let packed = !exact && filter.language == nil && !byModel && bounds.packed && VectorCode.length(query.count) <= CodeFile.maxLength
        let first = packed ? CodeBlocks.block(bounds.low) : bounds.low
        let last = packed ? CodeBlocks.block(bounds.high) : bounds.high
        let width: Int64 = (last - first) / Int64(parts) + 1
        let scans = try await withThrowingTaskGroup(of: (best: TopK, scored: Int).self) { group in
            for part in 0..<parts {
                let low = first + Int64(part) * width
                group.addTask {
                    try await pool.read { db -> (best: TopK, scored: Int) in
                        if packed, case .codes(let code) = source {
                            return try CodeFile.scan(db, code, kept: wanted, blocks: low..<(low + width))
                        }
                        return try Self.scan(db, source, kept: wanted, filter: filter, byModel: byModel, seqs: low..<(low + width))
                    }
                }
            }
            if !exact {
                // Vectors without a code yet are scored from their floats (usually none).
                group.addTask {
                    try await pool.read { db in
                        try Self.scan(db, .uncoded(query), kept: wanted, filter: filter, byModel: byModel, seqs: bounds.low..<(bounds.high + 1))
                    }
                }
            }
            var merged: [(best: TopK, scored: Int)] = []
            for try await scan in group { merged.append(scan) }
            return merged
        }
        var best = TopK(capacity: wanted)
        var scored = 0
        for scan in scans {
            for (score, seq) in scan.best.sorted() { best.insert(score: score, seq: seq) }
            scored += scan.scored
        }
        let candidates = best.sorted()
        // The exact scan's candidates are its result; the codes' are scored again from floats.
        let ranked = exact ? candidates : try await pool.read { db -> [(score: Double, seq: Int64)] in
            var exactly = TopK(capacity: kept)
            let statement = try db.cachedStatement(sql: "SELECT vector FROM repo_vector WHERE repo = ?")
            query.withUnsafeBytes { q in
                for (_, seq) in candidates {
                    guard let data = try? Data.fetchOne(statement, arguments: [seq]), data.count == query.count * 4,
                          let score = data.withUnsafeBytes({ VectorBlob.cosine(q.baseAddress!, $0.baseAddress!, count: query.count) })
                    else { continue }
                    exactly.insert(score: score, seq: seq)
                }
            }
            return exactly.sorted()
        }
        let hits = try await pool.read { db -> [SearchHit] in
            var hits: [SearchHit] = []
            for (score, seq) in ranked where hits.count < limit {
                guard let row = try Row.fetchOne(db, sql: "SELECT id, record, embedding_model FROM repo WHERE seq = ?", arguments: [seq]) else { continue }
                if let model = filter.modelIdentity, (row["embedding_model"] as String?) != model { continue }
                guard case .success(let repo) = Self.decodeRecord(row["record"], id: row["id"]) else { continue }
                hits.append(SearchHit(repo: repo, score: score))
            }
            return hits
        }
        if hits.count < limit, scored > kept, !byModel, filter.modelIdentity != nil { return nil }
        return hits
    }

    /// Reader connections one search scans with at once: the vectors are read in place (the
    /// file is memory-mapped) and scored with SIMD, so the scan is bound by memory and CPU.
    static let searchParts = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))

    /// What a scan reads and scores: the unit query against the float vectors, its code
    /// against the byte codes, or the query against the float vectors that have no code yet
    /// (written by an older version still running, see `repo_vector_uncoded`).
    enum VectorSource {
        case floats([Float])
        case codes(VectorCode?)
        case uncoded([Float])
    }

    /// Scores every vector of the query's length whose repo `seq` lies in `seqs`; the best `kept`.
    private static func scan(_ db: Database, _ source: VectorSource, kept: Int, filter: SearchFilter, byModel: Bool,
                             seqs: Range<Int64>) throws -> (best: TopK, scored: Int) {
        var best = TopK(capacity: kept)
        let dimensions: Int, table: String, column: String, bytes: Int
        // The uncoded list drives its scan (`CROSS JOIN` keeps SQLite's join order): empty, it
        // costs nothing.
        var from = ""
        switch source {
        case .floats(let query): (dimensions, table, column, bytes) = (query.count, "repo_vector", "vector", query.count * 4)
        case .uncoded(let query):
            (dimensions, table, column, bytes) = (query.count, "repo_vector", "vector", query.count * 4)
            from = "repo_vector_uncoded u CROSS JOIN "
        case .codes(let code):
            guard let code else { return (best, 0) }
            (dimensions, table, column, bytes) = (code.bytes.count, "repo_vector_code", "code", VectorCode.length(code.bytes.count))
        }
        // The vectors and their codes live in tables of their own, packed apart from the
        // records: the scan reads only them (or, with a language or when scanning by model,
        // only those repos').
        var sql = "SELECT v.repo, v.\(column) FROM \(from)\(table) v\(from.isEmpty ? "" : " ON v.repo = u.repo") WHERE v.repo >= ? AND v.repo < ? AND length(v.\(column)) = ?"
        var arguments: StatementArguments = [seqs.lowerBound, seqs.upperBound, bytes]
        if filter.language != nil || byModel {
            sql = """
                SELECT v.repo, v.\(column) FROM \(from)repo r\(from.isEmpty ? "" : " ON r.seq = u.repo") \(from.isEmpty ? "JOIN" : "CROSS JOIN") \(table) v ON v.repo = r.seq
                WHERE r.seq >= ? AND r.seq < ? AND r.embedding_dim = ?
                """
            arguments = [seqs.lowerBound, seqs.upperBound, dimensions]
            if let language = filter.language {
                sql += " AND r.language = ? COLLATE NOCASE"
                arguments += [language]
            }
            if byModel, let model = filter.modelIdentity {
                sql += " AND r.embedding_model = ?"
                arguments += [model]
            }
        }
        // Stepped through SQLite's C API: a GRDB row per vector (its Data, its checks) cost as
        // much as the scoring. The blob is read where SQLite holds it, valid until the next step.
        var scored = 0
        switch source {
        case .floats(let query), .uncoded(let query):
            try query.withUnsafeBytes { q in
                try CodeBlocks.step(db, sql: sql, arguments: arguments) { raw in
                    guard sqlite3_column_bytes(raw, 1) == Int32(bytes), let vector = sqlite3_column_blob(raw, 1),
                          let score = VectorBlob.cosine(q.baseAddress!, vector, count: dimensions)
                    else { return }
                    best.insert(score: score, seq: sqlite3_column_int64(raw, 0))
                    scored += 1
                }
            }
        case .codes(let code?):
            try code.bytes.withUnsafeBytes { q in
                try CodeBlocks.step(db, sql: sql, arguments: arguments) { raw in
                    guard sqlite3_column_bytes(raw, 1) == Int32(bytes), let stored = sqlite3_column_blob(raw, 1) else { return }
                    best.insert(score: code.score(q.baseAddress!, stored), seq: sqlite3_column_int64(raw, 0))
                    scored += 1
                }
            }
        case .codes(nil):
            break
        }
        return (best, scored)
    }
}
