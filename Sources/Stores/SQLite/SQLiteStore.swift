import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Repos and their vectors in one SQLite file: the embedded default, nothing to run.
///
/// The same contract as the server stores. Every change runs in an `IMMEDIATE` transaction, so
/// claims, conditional writes and failures are atomic even when several processes share the file
/// (WAL mode: readers never wait for the writer). Records are kept as the collector's JSON and
/// read leniently; vectors are little-endian float32 blobs (4 bytes per dimension), each with a
/// byte code (`VectorCode`), also packed 256 to a row (`CodeBlocks`). Search scans the codes of
/// the query's dimension, then scores the best candidates exactly from their floats.
public final class SQLiteStore: RepoStore, Sendable {
    private let configuration: Configuration
    private let file: URL
    private let logger: Logger
    private let opened = OpenedPool()

    public init(configuration: Configuration = Configuration(), directory: URL = URL(fileURLWithPath: "."), logger: Logger = Logger(label: "embed-star.sqlite-store")) {
        self.configuration = configuration
        file = configuration.path.hasPrefix("/") ? URL(fileURLWithPath: configuration.path) : directory.appendingPathComponent(configuration.path)
        self.logger = logger
    }

    /// The database file.
    public var path: String { file.path }

    // MARK: RepoStore

    public func prepare() async throws {
        let pool = try database()
        let applied = try await pool.writeWithoutTransaction { db in try SQLiteMigrations.apply(db) }
        if !applied.isEmpty {
            logger.info("sqlite store migrated", metadata: ["file": "\(file.path)", "applied": "\(applied.map(String.init).joined(separator: ","))"])
        }
        // Vectors an older version wrote meanwhile (a rolling deploy) get their codes.
        let uncoded = try await pool.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM repo_vector_uncoded)") ?? false }
        if uncoded {
            let coded = try await transaction { db in try SQLiteMigrations.codeUncoded(db) }
            logger.info("byte codes made for vectors written without them", metadata: ["vectors": "\(coded)"])
        }
        let packed = try await pack()
        if packed > 0 { logger.info("byte codes packed", metadata: ["blocks": "\(packed)"]) }
    }

    /// Rebuilds the stale blocks of byte codes (`CodeBlocks`), 64 in each transaction so a
    /// writer of another process waits at most one of them (about 6 MB written at 384
    /// dimensions); returns how many it rebuilt. One lookup when none is stale.
    @discardableResult
    public func pack() async throws -> Int {
        let pool = try database()
        var total = 0
        while try await pool.read({ db in try CodeBlocks.anyStale(db) }) {
            let packed = try await transaction { db in try CodeBlocks.pack(db, limit: 64) }
            if packed == 0 { break }
            total += packed
        }
        return total
    }

    public func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        guard request.limit > 0 else { return [] }
        let now = Date().timeIntervalSince1970
        let expires = now + request.leaseDuration.seconds
        let (claimed, unreadable) = try await transaction { db -> ([ClaimedRepo], [(String, String)]) in
            guard try Self.serves(request, now: now, db) else { return ([], []) }
            // New and changed repos first; then, within `staleLimit`, those only another model embedded.
            let free = "(lease_expires IS NULL OR lease_expires <= ?2) AND (not_before IS NULL OR not_before <= ?2)"
            var rows = try Row.fetchAll(db, sql: """
                SELECT id, record, revision, embedding_model, embedding_hash, attempts, 0 AS stale FROM repo
                WHERE failed = 0 AND current = 0 AND \(free) LIMIT ?3
                """, arguments: [request.model, now, request.limit])
            let room = min(request.limit - rows.count, request.staleLimit ?? .max)
            if room > 0 {
                rows += try Row.fetchAll(db, sql: """
                    SELECT id, record, revision, embedding_model, embedding_hash, attempts, 1 AS stale FROM repo
                    WHERE \(SQLiteMigrations.staleForModel1) AND \(free) LIMIT ?3
                    """, arguments: [request.model, now, room])
            }
            var claimed: [ClaimedRepo] = []
            var unreadable: [(String, String)] = []
            for row in rows {
                let id: String = row["id"]
                switch Self.decodeRecord(row["record"], id: id) {
                case .failure(let error):
                    let reason = "unreadable record: \(error)"
                    try db.execute(sql: "UPDATE repo SET failed = 1, last_error = ?, lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                                   arguments: [reason, id])
                    unreadable.append((id, reason))
                case .success(let repo):
                    try db.execute(sql: "UPDATE repo SET lease_owner = ?, lease_expires = ? WHERE id = ?", arguments: [request.owner, expires, id])
                    let model: String? = row["embedding_model"]
                    claimed.append(ClaimedRepo(repo: repo, revision: String(row["revision"] as Int64),
                                               embeddedHash: model == request.model ? row["embedding_hash"] : nil,
                                               attempts: row["attempts"], stale: row["stale"]))
                }
            }
            return (claimed, unreadable)
        }
        for (id, reason) in unreadable {
            logger.warning("marked an unreadable record failed", metadata: ["repo": "\(id)", "reason": "\(reason)"])
        }
        if claimed.isEmpty && unreadable.isEmpty {
            // The queue is dry: the codes written since the last time get packed for search.
            // Search is right either way, so a failure here is logged, not the claim's.
            do {
                try await pack()
            } catch {
                logger.warning("packing byte codes failed; search reads them unpacked meanwhile", metadata: ["error": "\(error)"])
            }
        }
        return claimed
    }

    /// Records the owner as running (in the claim's transaction); true when its model is the one
    /// of the most recently started running owner.
    private static func serves(_ request: ClaimRequest, now: Double, _ db: Database) throws -> Bool {
        try db.execute(sql: """
            INSERT INTO embed_star_instance (owner, model, started_at, seen_at) VALUES (?1, ?2, ?3, ?3)
            ON CONFLICT (owner) DO UPDATE SET started_at = CASE WHEN model = excluded.model THEN started_at ELSE excluded.started_at END,
              model = excluded.model, seen_at = excluded.seen_at
            """, arguments: [request.owner, request.model, now])
        try db.execute(sql: "DELETE FROM embed_star_instance WHERE seen_at < ?", arguments: [now - 86_400])
        let served = try String.fetchOne(db, sql: """
            SELECT model FROM embed_star_instance WHERE seen_at >= ? ORDER BY started_at DESC, owner DESC LIMIT 1
            """, arguments: [now - request.liveness.seconds])
        return served == request.model
    }

    public func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] {
        guard !writes.isEmpty else { return [:] }
        return try await transaction { db in
            var outcomes: [RepoID: WriteOutcome] = [:]
            for write in writes {
                guard let row = try Row.fetchOne(db, sql: "SELECT seq, revision, lease_owner FROM repo WHERE id = ?", arguments: [write.id.rawValue]) else {
                    outcomes[write.id] = .notFound
                    continue
                }
                guard (row["lease_owner"] as String?) == owner else {
                    outcomes[write.id] = .leaseLost
                    continue
                }
                guard String(row["revision"] as Int64) == write.revision else {
                    try db.execute(sql: "UPDATE repo SET lease_owner = NULL, lease_expires = NULL WHERE id = ?", arguments: [write.id.rawValue])
                    outcomes[write.id] = .changedSinceClaim
                    continue
                }
                switch write.change {
                case .embedded(let vector, let hash, let generatedAt):
                    try db.execute(sql: """
                        UPDATE repo SET embedding_dim = ?, embedding_hash = ?, embedding_generated_at = ?,
                          embedding_model = ?, embedded_revision = revision, attempts = 0, last_error = NULL, not_before = NULL,
                          lease_owner = NULL, lease_expires = NULL
                        WHERE id = ?
                        """, arguments: [vector.count, hash, generatedAt.timeIntervalSince1970, write.model, write.id.rawValue])
                    try Self.storeVector(db, vector, seq: row["seq"])
                case .unchanged(let hash):
                    try db.execute(sql: """
                        UPDATE repo SET embedding_hash = ?, embedding_model = ?, embedded_revision = revision, attempts = 0,
                          last_error = NULL, not_before = NULL, lease_owner = NULL, lease_expires = NULL
                        WHERE id = ?
                        """, arguments: [hash, write.model, write.id.rawValue])
                }
                outcomes[write.id] = .applied
            }
            return outcomes
        }
    }

    /// Stores a repo's vector and its byte code (none for a vector with no direction, which
    /// the search skips as it skips the vector).
    static func storeVector(_ db: Database, _ vector: [Float], seq: Int64) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO repo_vector (repo, vector) VALUES (?, ?)", arguments: [seq, VectorBlob.encode(vector)])
        // The vector's triggers removed its old code and marked it uncoded.
        if let code = VectorCode(VectorBlob.normalized(vector)) {
            try db.execute(sql: "INSERT OR REPLACE INTO repo_vector_code (repo, code) VALUES (?, ?)", arguments: [seq, code.data])
        }
        try db.execute(sql: "DELETE FROM repo_vector_uncoded WHERE repo = ?", arguments: [seq])
    }

    public func recordFailures(_ failures: [RepoFailure], owner: String, maxAttempts: Int) async throws -> [RepoID: FailureOutcome] {
        guard !failures.isEmpty else { return [:] }
        let now = Date().timeIntervalSince1970
        return try await transaction { db in
            var outcomes: [RepoID: FailureOutcome] = [:]
            for failure in failures {
                guard let row = try Row.fetchOne(db, sql: "SELECT attempts, lease_owner FROM repo WHERE id = ?", arguments: [failure.id.rawValue]),
                      (row["lease_owner"] as String?) == owner else { continue }
                let attempts = (row["attempts"] as Int) + 1
                let failed = failure.permanent || attempts >= maxAttempts
                try db.execute(sql: """
                    UPDATE repo SET attempts = ?, last_error = ?, failed = ?, not_before = ?, lease_owner = NULL, lease_expires = NULL
                    WHERE id = ?
                    """, arguments: [attempts, failure.reason, failed, failed ? nil : now + failure.retryAfter.seconds, failure.id.rawValue])
                outcomes[failure.id] = failed ? .failed(attempts: attempts) : .willRetry(attempts: attempts)
            }
            return outcomes
        }
    }

    public func release(_ ids: [RepoID], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await transaction { db in
            for id in ids {
                try db.execute(sql: "UPDATE repo SET lease_owner = NULL, lease_expires = NULL WHERE id = ? AND lease_owner = ?",
                               arguments: [id.rawValue, owner])
            }
        }
    }

    public func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID> {
        guard !ids.isEmpty else { return [] }
        let until = Date().timeIntervalSince1970 + leaseDuration.seconds
        return try await transaction { db in
            var held: Set<RepoID> = []
            for id in ids {
                try db.execute(sql: "UPDATE repo SET lease_expires = ? WHERE id = ? AND lease_owner = ?", arguments: [until, id.rawValue, owner])
                if db.changesCount > 0 { held.insert(id) }
            }
            return held
        }
    }

    public func releaseAll(owner: String, except: Set<RepoID>) async throws -> Int {
        try await transaction { db in
            let held = try String.fetchAll(db, sql: "SELECT id FROM repo WHERE lease_owner = ?", arguments: [owner])
            var count = 0
            for id in held where !except.contains(RepoID(id)) {
                try db.execute(sql: "UPDATE repo SET lease_owner = NULL, lease_expires = NULL WHERE id = ?", arguments: [id])
                count += 1
            }
            return count
        }
    }

    public func resetFailed() async throws -> Int {
        try await transaction { db in
            try db.execute(sql: "UPDATE repo SET failed = 0, attempts = 0, last_error = NULL, not_before = NULL WHERE failed = 1")
            return db.changesCount
        }
    }

    public func upsert(_ repos: [Repo]) async throws {
        guard !repos.isEmpty else { return }
        let encoded = try repos.map { ($0, try Self.encodeRecord($0)) }
        try await transaction { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO repo (id, record, full_name, language, changed_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET record = excluded.record, full_name = excluded.full_name,
                  language = excluded.language, revision = revision + 1,
                  failed = 0, attempts = 0, last_error = NULL, not_before = NULL, changed_at = excluded.changed_at
                WHERE record IS NOT excluded.record
                """)
            let now = Date().timeIntervalSince1970
            for (repo, record) in encoded {
                try statement.execute(arguments: [repo.id.rawValue, record, repo.fullName, repo.language, now])
            }
        }
    }

    public func stats(model: String) async throws -> StoreStats {
        let now = Date().timeIntervalSince1970
        return try await database().read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT count(*) AS total,
                  coalesce(sum(failed = 1), 0) AS failed,
                  coalesce(sum(failed = 0 AND (current = 0 OR embedding_model IS NOT ?1)), 0) AS pending,
                  coalesce(sum(failed = 0 AND (current = 0 OR embedding_model IS NOT ?1) AND lease_expires > ?2), 0) AS leased
                FROM repo
                """, arguments: [model, now]) else { return StoreStats(total: 0, embedded: 0, pending: 0, failed: 0, leased: 0) }
            let total: Int = row["total"], failed: Int = row["failed"], pending: Int = row["pending"]
            return StoreStats(total: total, embedded: total - failed - pending, pending: pending, failed: failed, leased: row["leased"])
        }
    }

    public func coverage() async throws -> [String: Int] {
        try await database().read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT embedding_model, count(*) AS n FROM repo WHERE embedding_dim IS NOT NULL GROUP BY embedding_model
                """) {
                if let model: String = row["embedding_model"] { counts[model] = row["n"] }
            }
            return counts
        }
    }

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
        let kept = filter.model != nil && !byModel ? limit * 4 : limit
        let source: VectorSource = exact ? .floats(query) : .codes(VectorCode(query))
        let wanted = exact ? kept : Self.candidates(for: kept)
        // The range of the table's keys: two lookups, each its own query. SQLite looks up a
        // lone `min()` or `max()` in the key's order, but reads the whole table for both in one
        // (40 ms of every search at 100,000 vectors), as it would for `count(*)`.
        let bounds = try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT (SELECT min(repo) FROM repo_vector) AS low, (SELECT max(repo) FROM repo_vector) AS high")
                .flatMap { row -> (low: Int64, high: Int64)? in
                    guard let low = row["low"] as Int64?, let high = row["high"] as Int64? else { return nil }
                    return (low, high)
                }
        }
        guard let bounds else { return [] }
        let parts = Int(max(1, min(Int64(Self.searchParts), (bounds.high - bounds.low) / 20_000)))
        // Without a filter on the repo's row, the codes are read in their packed blocks, and
        // the ranges are ranges of blocks.
        let packed = !exact && filter.language == nil && !byModel
        let first = packed ? CodeBlocks.block(bounds.low) : bounds.low
        let last = packed ? CodeBlocks.block(bounds.high) : bounds.high
        let width = (last - first) / Int64(parts) + 1
        let scans = try await withThrowingTaskGroup(of: (best: TopK, scored: Int).self) { group in
            for part in 0..<parts {
                let low = first + Int64(part) * width
                group.addTask {
                    try await pool.read { db -> (best: TopK, scored: Int) in
                        if packed, case .codes(let code) = source {
                            return try CodeBlocks.scan(db, code, kept: wanted, blocks: low..<(low + width))
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
                if let model = filter.model, (row["embedding_model"] as String?) != model { continue }
                guard case .success(let repo) = Self.decodeRecord(row["record"], id: row["id"]) else { continue }
                hits.append(SearchHit(repo: repo, score: score))
            }
            return hits
        }
        if hits.count < limit, scored > kept, !byModel, filter.model != nil { return nil }
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
            if byModel, let model = filter.model {
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

    public func scan(model: String, after: String?, limit: Int) async throws -> ScanPage {
        guard limit > 0 else { return ScanPage(repos: [], next: after) }
        let from = after.flatMap(Int64.init) ?? 0
        return try await database().read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT r.seq, r.id, r.record, r.failed, r.current, r.embedding_model, r.embedding_hash, r.embedding_generated_at,
                  r.attempts, r.last_error, r.changed_at, v.vector FROM repo r LEFT JOIN repo_vector v ON v.repo = r.seq
                WHERE r.seq > ? ORDER BY r.seq LIMIT ?
                """, arguments: [from, limit])
            var repos: [StoredRepo] = []
            var unreadable = 0, last = from, count = 0
            while let row = try rows.next() {
                count += 1
                last = row["seq"]
                let id: String = row["id"]
                guard case .success(let repo) = Self.decodeRecord(row["record"], id: id) else {
                    unreadable += 1
                    continue
                }
                let embeddingModel: String? = row["embedding_model"]
                let state: StoredRepo.State = (row["failed"] as Bool) ? .failed
                    : (row["current"] as Bool) && embeddingModel == model ? .embedded : .pending
                repos.append(StoredRepo(repo: repo, state: state, embedding: (row["vector"] as Data?).map(VectorBlob.decode),
                                        embeddingModel: embeddingModel, embeddingHash: row["embedding_hash"],
                                        embeddingGeneratedAt: (row["embedding_generated_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                                        attempts: row["attempts"], lastError: row["last_error"],
                                        pendingSince: state == .pending ? (row["changed_at"] as Double?).map(Date.init(timeIntervalSince1970:)) : nil))
            }
            return ScanPage(repos: repos, next: count < limit ? nil : String(last), unreadable: unreadable)
        }
    }

    public func health() async -> ComponentHealth {
        let start = ContinuousClock.now
        do {
            _ = try await database().read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM embed_star_migration") }
            return ComponentHealth(status: .up, latency: ContinuousClock.now - start)
        } catch {
            return ComponentHealth(status: .down, detail: "\(error)", latency: ContinuousClock.now - start)
        }
    }

    public func shutdown() async {
        opened.close()
    }

    // MARK: Details

    /// What embed-star keeps about one repo, for tests and tools.
    public struct Entry: Sendable {
        public var repo: Repo?
        public var revision: Int
        public var embedding: [Float]?
        public var embeddingModel: String?
        public var embeddingHash: String?
        public var attempts: Int
        public var lastError: String?
        public var failed: Bool
        public var leaseOwner: String?
    }

    public func entry(_ id: RepoID) async throws -> Entry? {
        try await database().read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT r.*, v.vector AS embedding FROM repo r LEFT JOIN repo_vector v ON v.repo = r.seq WHERE r.id = ?
                """, arguments: [id.rawValue]) else { return nil }
            return Optional(Entry(repo: try? Self.decodeRecord(row["record"], id: id.rawValue).get(), revision: row["revision"],
                         embedding: (row["embedding"] as Data?).map(VectorBlob.decode), embeddingModel: row["embedding_model"],
                         embeddingHash: row["embedding_hash"], attempts: row["attempts"], lastError: row["last_error"],
                         failed: row["failed"], leaseOwner: row["lease_owner"]))
        }
    }

    /// Runs SQL against the file, for tests and tools that need what the contract does not offer.
    public func execute(_ sql: String) async throws {
        try await transaction { db in try db.execute(sql: sql) }
    }

    private func database() throws -> DatabasePool {
        try opened.get {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            var config = GRDB.Configuration()
            config.busyMode = .timeout(configuration.busyTimeoutSeconds)
            config.label = "embed-star.sqlite"
            // Reads map the file instead of copying each page out of the kernel: a search reads
            // every vector (150 MB at 100,000 repos of 384 dimensions), and pread's copies were
            // a third of its time.
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA mmap_size = \(Self.mmapBytes)") }
            do {
                return try DatabasePool(path: file.path, configuration: config)
            } catch {
                throw SQLiteStoreError("cannot open \(file.path): \(error)")
            }
        }
    }

    /// How much of the file reads may map (SQLite's `mmap_size`; the OS pages it in on demand).
    static let mmapBytes = 2 << 30

    /// One `IMMEDIATE` transaction: the write lock is taken first, so what the closure reads
    /// cannot change under it, in this process or another.
    ///
    /// Another process holding the write lock for longer than `busy_timeout_seconds` is a
    /// retryable error (the pipeline waits and tries again), not the end of a backfill.
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await database().writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!  // set: inTransaction ran the closure or threw
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw SQLiteStoreError("\(file.path) is locked by another writer for longer than \(configuration.busyTimeoutSeconds) s", retryable: true)
        }
    }

    static func encodeRecord(_ repo: Repo) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(repo.jsonValue), as: UTF8.self)
    }

    static func decodeRecord(_ record: String?, id: String) -> Result<Repo, EmbedStarCore.RecordError> {
        guard let record, let value = try? JSONValue.parse(record) else {
            return .failure(EmbedStarCore.RecordError(record: id, field: nil, problem: "the stored record is not JSON"))
        }
        return Repo.decode(value, fallbackName: id).map { repo in
            var repo = repo
            repo.id = RepoID(id)
            return repo
        }
    }
}

public struct SQLiteStoreError: Error, CustomStringConvertible, RetryableError {
    public var description: String
    /// The database was busy: trying again later can succeed.
    public var isRetryable: Bool

    init(_ description: String, retryable: Bool = false) {
        self.description = description
        isRetryable = retryable
    }
}

/// The pool, opened on first use and closed at shutdown.
private final class OpenedPool: @unchecked Sendable {
    private let lock = NSLock()
    private var pool: DatabasePool?

    func get(_ open: () throws -> DatabasePool) throws -> DatabasePool {
        lock.lock()
        defer { lock.unlock() }
        if let pool { return pool }
        let opened = try open()
        pool = opened
        return opened
    }

    func close() {
        lock.lock()
        let pool = self.pool
        self.pool = nil
        lock.unlock()
        try? pool?.close()
    }
}

/// Versioned schema changes, applied once each in one transaction that holds the write lock,
/// so processes starting together neither race nor repeat them.
enum SQLiteMigrations {
    /// Unchanged since another model than the one bound to `?1` embedded it, spelled so each
    /// branch is a range of `repo_queue` (a claim reads only candidates, however many repos are
    /// embedded).
    static let staleForModel1 = """
        (failed = 0 AND current = 1 AND embedding_model < ?1
         OR failed = 0 AND current = 1 AND embedding_model > ?1 OR failed = 0 AND current = 1 AND embedding_model IS NULL)
        """

    static let steps: [(version: Int, sql: String)] = [
        (1, """
            CREATE TABLE repo (
              seq INTEGER PRIMARY KEY,
              id TEXT NOT NULL UNIQUE,
              record TEXT NOT NULL,
              full_name TEXT NOT NULL,
              language TEXT,
              revision INTEGER NOT NULL DEFAULT 1,
              embedding_model TEXT,
              embedding_hash TEXT,
              embedded_revision INTEGER,
              embedding_dim INTEGER,
              embedding_generated_at REAL,
              attempts INTEGER NOT NULL DEFAULT 0,
              last_error TEXT,
              failed INTEGER NOT NULL DEFAULT 0,
              not_before REAL,
              lease_owner TEXT,
              lease_expires REAL,
              current INTEGER GENERATED ALWAYS AS (embedding_dim IS NOT NULL AND embedded_revision IS revision) VIRTUAL
            );
            CREATE INDEX repo_queue ON repo (failed, current, embedding_model, lease_expires);
            CREATE INDEX repo_lease ON repo (lease_owner) WHERE lease_owner IS NOT NULL;
            CREATE INDEX repo_vectors ON repo (embedding_dim, language COLLATE NOCASE) WHERE embedding_dim IS NOT NULL;
            CREATE TABLE repo_vector (
              repo INTEGER PRIMARY KEY NOT NULL REFERENCES repo (seq) ON DELETE CASCADE,
              vector BLOB NOT NULL
            );
            """),
        (2, """
            CREATE TABLE embed_star_instance (
              owner TEXT PRIMARY KEY,
              model TEXT NOT NULL,
              started_at REAL NOT NULL,
              seen_at REAL NOT NULL
            );
            """),
        // When the record last came in new or changed: the backlog's age (NULL for rows from before).
        (3, "ALTER TABLE repo ADD COLUMN changed_at REAL"),
        // Each vector's byte code (VectorCode), which the search scans first; filled from the
        // vectors already stored by `fills`. A version from before, still running during a
        // rolling deploy, writes vectors without codes: the triggers (plain SQL, so they run in
        // its connections too) drop the old code and list the vector as uncoded; search scores
        // those from their floats, and `prepare` codes them.
        (4, """
            CREATE TABLE repo_vector_code (
              repo INTEGER PRIMARY KEY NOT NULL REFERENCES repo (seq) ON DELETE CASCADE,
              code BLOB NOT NULL
            );
            CREATE TABLE repo_vector_uncoded (
              repo INTEGER PRIMARY KEY NOT NULL REFERENCES repo (seq) ON DELETE CASCADE
            );
            CREATE TRIGGER repo_vector_uncoded_insert AFTER INSERT ON repo_vector BEGIN
              DELETE FROM repo_vector_code WHERE repo = NEW.repo;
              INSERT OR IGNORE INTO repo_vector_uncoded (repo) VALUES (NEW.repo);
            END;
            CREATE TRIGGER repo_vector_uncoded_update AFTER UPDATE OF vector ON repo_vector BEGIN
              DELETE FROM repo_vector_code WHERE repo = NEW.repo;
              INSERT OR IGNORE INTO repo_vector_uncoded (repo) VALUES (NEW.repo);
            END;
            """),
        // The codes packed in blocks (CodeBlocks); every block starts stale and is packed by
        // `prepare`.
        (5, CodeBlocks.migration),
    ]

    /// What a step needs done beyond its SQL, in the same transaction.
    static let fills: [Int: @Sendable (Database) throws -> Void] = [4: fillCodes]

    /// Codes for the vectors stored before version 4 (3.6 s for 100,000 at 384 dimensions,
    /// measured with a build running beside it), in the transaction that holds the write lock.
    static func fillCodes(_ db: Database) throws {
        try code(db, sql: "SELECT repo, vector FROM repo_vector")
    }

    /// Codes the vectors an older version wrote without one; returns how many.
    @discardableResult
    static func codeUncoded(_ db: Database) throws -> Int {
        try code(db, sql: "SELECT v.repo, v.vector FROM repo_vector_uncoded u JOIN repo_vector v ON v.repo = u.repo")
    }

    private static func code(_ db: Database, sql: String) throws -> Int {
        let vectors = try Row.fetchCursor(db, sql: sql)
        let insert = try db.makeStatement(sql: "INSERT OR REPLACE INTO repo_vector_code (repo, code) VALUES (?, ?)")
        var count = 0
        while let row = try vectors.next() {
            count += 1
            guard let code = VectorCode(VectorBlob.normalized(VectorBlob.decode(row["vector"]))) else { continue }
            try insert.execute(arguments: [row["repo"] as Int64, code.data])
        }
        try db.execute(sql: "DELETE FROM repo_vector_uncoded")
        return count
    }

    /// Applies what is missing; returns the versions it applied.
    static func apply(_ db: Database) throws -> [Int] {
        var applied: [Int] = []
        try db.inTransaction(.immediate) {
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS embed_star_migration (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            let done = Set(try Int.fetchAll(db, sql: "SELECT version FROM embed_star_migration"))
            if let newest = done.max(), newest > steps.last!.version {  // steps is a non-empty literal
                throw SQLiteStoreError("the database was migrated by a newer embed-star (schema version \(newest), this one knows \(steps.last!.version))")
            }
            for step in steps where !done.contains(step.version) {
                try db.execute(sql: step.sql)
                try fills[step.version]?(db)
                try db.execute(sql: "INSERT INTO embed_star_migration (version, applied_at) VALUES (?, ?)",
                               arguments: [step.version, Date().timeIntervalSince1970])
                applied.append(step.version)
            }
            return .commit
        }
        return applied
    }
}

/// A unit vector in a quarter of its bytes, for the search's first pass: each component over
/// the largest component's magnitude, times 127, rounded to a signed byte. Stored as the scale
/// (the largest magnitude / 127, a little-endian float32) and then the bytes. The dot product
/// of two codes times their scales is their cosine to within about 0.002 at 384 dimensions.
struct VectorCode {
    let scale: Float
    let bytes: [Int8]

    /// Nil for a vector with no direction or that is not finite.
    init?(_ unit: [Float]?) {
        guard let unit, let largest = unit.lazy.map(abs).max(), largest > 0, largest.isFinite else { return nil }
        scale = largest / 127
        bytes = unit.map { Int8(($0 / largest * 127).rounded()) }
    }

    static func length(_ dimensions: Int) -> Int { 4 + dimensions }

    var data: Data {
        var data = Data(capacity: Self.length(bytes.count))
        withUnsafeBytes(of: scale.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        bytes.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The approximate cosine of this code (its bytes at `query`) and a stored code at `stored`.
    @inline(__always)
    func score(_ query: UnsafeRawPointer, _ stored: UnsafeRawPointer) -> Double {
        let storedScale = Float(bitPattern: UInt32(littleEndian: stored.loadUnaligned(as: UInt32.self)))
        return Double(scale * storedScale) * Double(VectorKernels.dot(int8: query, stored + 4, count: bytes.count))
    }
}

/// Vectors as little-endian float32 blobs, and the cosine over them.
enum VectorBlob {
    static func encode(_ vector: [Float]) -> Data {
        var data = Data(count: vector.count * 4)
        data.withUnsafeMutableBytes { raw in
            for (i, value) in vector.enumerated() { raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        return data
    }

    static func decode(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in
            (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// `vector` scaled to length 1, or nil when it has no direction or is not finite.
    static func normalized(_ vector: [Float]) -> [Float]? {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return nil }
        return vector.map { $0 / norm }
    }

    /// Cosine of a unit `query` and a stored vector, both `count` floats read in place; nil for
    /// a zero vector. Little-endian hosts only (every platform Swift on Linux and macOS runs on).
    @inline(__always)
    static func cosine(_ query: UnsafeRawPointer, _ vector: UnsafeRawPointer, count: Int) -> Double? {
        let (dot, squared) = VectorKernels.dotAndSquaredLength(query, vector, count: count)
        guard squared > 0 else { return nil }
        return Double(dot / squared.squareRoot())
    }
}

/// The `capacity` best scores seen, as a bounded min-heap.
struct TopK {
    let capacity: Int
    private var heap: [(score: Double, seq: Int64)] = []

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    mutating func insert(score: Double, seq: Int64) {
        if heap.count < capacity {
            heap.append((score, seq))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].score < heap[parent].score else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        } else if score > heap[0].score {
            heap[0] = (score, seq)
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count, heap[left].score < heap[smallest].score { smallest = left }
                if right < heap.count, heap[right].score < heap[smallest].score { smallest = right }
                guard smallest != parent else { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Best first.
    func sorted() -> [(score: Double, seq: Int64)] {
        heap.sorted { $0.score > $1.score }
    }
}
