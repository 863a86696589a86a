import EmbedStarConfig
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
    let configuration: Configuration
    let file: URL
    let logger: Logger
    let opened = OpenedPool()

    public init(configuration: Configuration = Configuration(), directory: URL = URL(fileURLWithPath: "."), logger: Logger = Logger(label: "embed-star.sqlite-store")) {
        self.configuration = configuration
        file = ConfigPath.resolve(configuration.path, against: directory)
        self.logger = logger
    }

    /// The database file.
    public var path: String { file.path }

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
            return StoreSchema(version: version, required: required, servedModelIdentity: served)
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
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
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
