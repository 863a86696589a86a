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
/// byte code (`VectorCode`), also packed for search in a file beside it (`CodeFile`). Search
/// scans the codes of the query's dimension, then scores the best candidates exactly from their
/// floats.
public final class SQLiteStore: RepoStore, Sendable {
    private let configuration: Configuration
    private let file: URL
    private let logger: Logger
    private let opened = OpenedPool()

    public init(configuration: Configuration = Configuration(), directory: URL = URL(fileURLWithPath: "."), logger: Logger = Logger(label: "embed-star.sqlite-store")) {
        self.configuration = configuration
        file = ConfigPath.resolve(configuration.path, against: directory)
        self.logger = logger
    }

    /// The database file.
    public var path: String { file.path }

    // MARK: RepoStore

    public func prepare() async throws {
        let pool = try database()
        let applied = try await pool.writeWithoutTransaction { db in try SQLiteMigrations.apply(db) }
        let adopted = try await transaction { db in try CodeFile.adopt(db) }
        if !applied.isEmpty {
            logger.info("sqlite store migrated", metadata: ["file": "\(file.path)", "applied": "\(applied.map(String.init).joined(separator: ","))"])
            // A migration can rewrite much of the file (version 6 frees the 400 MB of codes
            // version 5 packed at 1,000,000 repos): checkpointed into the file itself. Measured
            // without this right after that migration: the exact scan 553 ms against 426 ms
            // before it, `embed-star search` 261 ms against 134 ms.
            try await checkpoint("main")
        }
        if adopted { logger.info("byte codes file made for this database; search reads the code rows until it is packed", metadata: ["file": "\(codesPath)"]) }
        // Vectors an older version wrote meanwhile (a rolling deploy) get their codes.
        let uncoded = try await pool.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM repo_vector_uncoded)") ?? false }
        if uncoded {
            let coded = try await transaction { db in try SQLiteMigrations.codeUncoded(db) }
            logger.info("byte codes made for vectors written without them", metadata: ["vectors": "\(coded)"])
        }
        let packed = try await pack()
        if packed > 0 { logger.info("byte codes packed", metadata: ["blocks": "\(packed)"]) }
    }

    /// Applies the migrations up to `version` only (tests make a database of an older version).
    func migrate(through version: Int) async throws {
        _ = try await database().writeWithoutTransaction { db in try SQLiteMigrations.apply(db, through: version) }
    }

    /// The file the byte codes are packed in for search (`CodeFile`), beside the database.
    public var codesPath: String { CodeFile.path(for: file) }

    /// Packs the byte codes of the blocks changed since they were last packed (`CodeFile`), 64
    /// blocks in each transaction so a writer of another process waits at most one of them
    /// (about 6 MB written at 384 dimensions); returns how many it packed. Two lookups when
    /// nothing changed.
    @discardableResult
    public func pack() async throws -> Int {
        let pool = try database()
        var total = 0
        while try await pool.read({ db in try CodeFile.anyStale(db) }) {
            let packed = try await transaction { db in try CodeFile.pack(db, limit: 64) }
            if packed == 0 { break }
            total += packed
        }
        if total > 0 {
            // Into the codes file itself, which searches read mapped. Left in the write-ahead
            // log (64 MB before SQLite checkpoints on its own: all the codes of 100,000 repos),
            // every page is a read from the log, and every process that opens the file first
            // reads the whole log to index it: 76 ms for `embed-star search` against 39 ms.
            try await checkpoint("codes")
        }
        return total
    }

    /// Copies what the write-ahead log of `schema` ("main" or "codes") holds into its file and
    /// empties the log (waiting for other processes' readers up to the busy timeout).
    private func checkpoint(_ schema: String) async throws {
        try await database().writeWithoutTransaction { db in try db.execute(sql: "PRAGMA \(schema).wal_checkpoint(TRUNCATE)") }
    }

    /// How many blocks of byte codes wait to be packed (for tests and tools).
    public func unpackedBlocks() async throws -> Int {
        try await database().read { db in try CodeFile.unpackedCount(db) }
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
                SELECT id, record, revision, embedding_model, CASE WHEN EXISTS (SELECT 1 FROM repo_vector v WHERE v.repo = repo.seq) THEN embedding_hash END AS embedding_hash, attempts, 0 AS stale, requeued FROM repo
                WHERE failed = 0 AND current = 0 AND \(free) LIMIT ?3
                """, arguments: [request.model, now, request.limit])
            let room = min(request.limit - rows.count, request.staleLimit ?? .max)
            if room > 0 {
                rows += try Row.fetchAll(db, sql: """
                    SELECT id, record, revision, embedding_model, CASE WHEN EXISTS (SELECT 1 FROM repo_vector v WHERE v.repo = repo.seq) THEN embedding_hash END AS embedding_hash, attempts, 1 AS stale, requeued FROM repo
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
                                               attempts: row["attempts"], stale: row["stale"], requeued: row["requeued"]))
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
        try db.execute(sql: "DELETE FROM embed_star_instance WHERE seen_at < ?", arguments: [now - ClaimRequest.ownerRetention.seconds])
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
                          lease_owner = NULL, lease_expires = NULL, requeued = 0
                        WHERE id = ?
                        """, arguments: [vector.count, hash, generatedAt.timeIntervalSince1970, write.model, write.id.rawValue])
                    try Self.storeVector(db, vector, seq: row["seq"])
                case .unchanged(let hash):
                    try db.execute(sql: """
                        UPDATE repo SET embedding_hash = ?, embedding_model = ?, embedded_revision = revision, attempts = 0,
                          last_error = NULL, not_before = NULL, lease_owner = NULL, lease_expires = NULL, requeued = 0
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
                guard let row = try Row.fetchOne(db, sql: "SELECT attempts, lease_owner, revision FROM repo WHERE id = ?", arguments: [failure.id.rawValue]),
                      (row["lease_owner"] as String?) == owner else { continue }
                // Counted only against the claimed revision: a failure of a text changed since
                // ends the lease and nothing else.
                guard String(row["revision"] as Int64) == failure.revision else {
                    try db.execute(sql: "UPDATE repo SET lease_owner = NULL, lease_expires = NULL WHERE id = ?", arguments: [failure.id.rawValue])
                    continue
                }
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
            // The owner is running while it renews (see ClaimRequest.liveness).
            try db.execute(sql: "UPDATE embed_star_instance SET seen_at = ? WHERE owner = ?", arguments: [Date().timeIntervalSince1970, owner])
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
            try db.execute(sql: "UPDATE repo SET failed = 0, attempts = 0, last_error = NULL, not_before = NULL, changed_at = ? WHERE failed = 1",
                           arguments: [Date().timeIntervalSince1970])
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

    public func oldestPendingSince(model: String) async throws -> Date? {
        try await database().read { db in
            // New, changed, requeued and retried repos: since they changed. Repos only another
            // model embedded: since the first instance of this model started (they wait for it,
            // not since they last changed, maybe months ago).
            try Double.fetchOne(db, sql: """
                SELECT min(t) FROM (
                  SELECT min(changed_at) AS t FROM repo WHERE failed = 0 AND current = 0
                  UNION ALL
                  SELECT (SELECT min(started_at) FROM embed_star_instance WHERE model = ?1)
                  WHERE EXISTS (SELECT 1 FROM repo WHERE failed = 0 AND current = 1 AND embedding_model IS NOT ?1)
                )
                """, arguments: [model]).map(Date.init(timeIntervalSince1970:))
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

    public func scan(model: String, after: String?, limit: Int) async throws -> ScanPage {
        guard limit > 0 else { return ScanPage(repos: [], next: after) }
        let from = after.flatMap(Int64.init) ?? 0
        return try await database().read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT \(Self.storedColumns) FROM repo r LEFT JOIN repo_vector v ON v.repo = r.seq
                WHERE r.seq > ? ORDER BY r.seq LIMIT ?
                """, arguments: [from, limit])
            var repos: [StoredRepo] = []
            var unreadable = 0, last = from, count = 0
            while let row = try rows.next() {
                count += 1
                last = row["seq"]
                guard let stored = Self.storedRepo(row, model: model) else {
                    unreadable += 1
                    continue
                }
                repos.append(stored)
            }
            return ScanPage(repos: repos, next: count < limit ? nil : String(last), unreadable: unreadable)
        }
    }

    /// The columns ``storedRepo(_:model:)`` reads, of `repo r` joined with `repo_vector v`.
    private static let storedColumns = """
        r.seq, r.id, r.record, r.failed, r.current, r.embedding_model, r.embedding_hash, r.embedding_generated_at,
          r.attempts, r.last_error, r.changed_at, r.lease_owner, r.lease_expires, v.vector
        """

    /// A row of ``storedColumns`` as a stored repo; nil when its record cannot be read.
    private static func storedRepo(_ row: Row, model: String) -> StoredRepo? {
        guard case .success(let repo) = decodeRecord(row["record"], id: row["id"]) else { return nil }
        let embeddingModel: String? = row["embedding_model"]
        let state: StoredRepo.State = (row["failed"] as Bool) ? .failed
            : (row["current"] as Bool) && embeddingModel == model ? .embedded : .pending
        return StoredRepo(repo: repo, state: state, embedding: (row["vector"] as Data?).map(VectorBlob.decode),
                          embeddingModel: embeddingModel, embeddingHash: row["embedding_hash"],
                          embeddingGeneratedAt: (row["embedding_generated_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                          attempts: row["attempts"], lastError: row["last_error"],
                          pendingSince: state == .pending ? (row["changed_at"] as Double?).map(Date.init(timeIntervalSince1970:)) : nil)
    }

    public func find(_ reference: String, model: String) async throws -> [StoredRepo] {
        try await database().read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT \(Self.storedColumns) FROM repo r LEFT JOIN repo_vector v ON v.repo = r.seq
                WHERE r.id = ?1 OR (NOT EXISTS (SELECT 1 FROM repo WHERE id = ?1) AND lower(r.full_name) = lower(?1))
                ORDER BY r.seq
                """, arguments: [reference])
            let now = Date().timeIntervalSince1970
            return rows.compactMap { row in
                guard var stored = Self.storedRepo(row, model: model) else { return nil }
                if let expires = row["lease_expires"] as Double?, expires > now, let owner = row["lease_owner"] as String? {
                    stored.leaseOwner = owner
                    stored.leaseExpires = Date(timeIntervalSince1970: expires)
                }
                return stored
            }
        }
    }

    public func requeue(_ ids: [RepoID]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await transaction { db in
            let now = Date().timeIntervalSince1970
            var count = 0
            for id in Set(ids) {
                try db.execute(sql: """
                    UPDATE repo SET failed = 0, attempts = 0, last_error = NULL, not_before = NULL, lease_owner = NULL,
                      lease_expires = NULL, embedding_hash = NULL, embedded_revision = NULL, changed_at = ?,
                      revision = revision + 1, requeued = 1
                    WHERE id = ?
                    """, arguments: [now, id.rawValue])
                count += db.changesCount
            }
            return count
        }
    }

    /// Reads the schema version without writing: a file that does not exist is not created, and
    /// the one that does is read through a read-only connection of its own (not the pool, whose
    /// opening takes the lock file, switches a file to WAL and attaches the codes file).
    public func openForReading() async throws -> StoreSchema {
        let required = SQLiteMigrations.newest
        guard FileManager.default.fileExists(atPath: file.path) else { return StoreSchema(version: 0, required: required) }
        var config = GRDB.Configuration()
        config.readonly = true
        config.busyMode = .timeout(configuration.busyTimeoutSeconds)
        config.label = "embed-star.sqlite.read-only"
        let reader: DatabaseQueue
        do {
            reader = try DatabaseQueue(path: file.path, configuration: config)
        } catch {
            throw SQLiteStoreError("cannot open \(file.path) to read it: \(error)")
        }
        defer { try? reader.close() }
        return try await reader.read { db in
            guard try db.tableExists("embed_star_migration") else { return StoreSchema(version: 0, required: required) }
            let version = try Int.fetchOne(db, sql: "SELECT max(version) FROM embed_star_migration") ?? 0
            var served: String?
            if try db.tableExists("embed_star_instance") {
                // The newest model among instances seen in the last five minutes (the one claims
                // serve), else the model of the instance seen last.
                served = try String.fetchOne(db, sql: """
                    SELECT model FROM embed_star_instance
                    ORDER BY seen_at >= (SELECT max(seen_at) FROM embed_star_instance) - 300 DESC, started_at DESC, seen_at DESC LIMIT 1
                    """)
            }
            return StoreSchema(version: version, required: required, servedModel: served)
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

    func database() throws -> DatabasePool {
        try opened.get {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            var config = GRDB.Configuration()
            config.busyMode = .timeout(configuration.busyTimeoutSeconds)
            config.label = "embed-star.sqlite"
            // Reads map the file instead of copying each page out of the kernel: a search reads
            // every vector (150 MB at 100,000 repos of 384 dimensions), and pread's copies were
            // a third of its time.
            // The byte codes' file is attached to every connection (the writer's creates it).
            let codes = CodeFile.path(for: file)
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA mmap_size = \(Self.mmapBytes)")
                try CodeFile.attach(db, path: codes)
            }
            // Opening turns a new file to WAL, which needs the file to itself: processes opening a
            // new database at once (replicas starting together) were refused with "database is
            // locked". The open runs under a lock on a file beside the database.
            do {
                var pool: DatabasePool?
                try FileLock.holding(file.path + ".lock") { pool = try DatabasePool(path: file.path, configuration: config) }
                return pool!
            } catch let error as SQLiteStoreError {
                throw error
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
