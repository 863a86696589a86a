import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

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
        // The codes packed in a file of their own (CodeFile), trusted by block version.
        (6, CodeFile.migration),
        // Repos named by `requeue`: embedded again by the provider, not from a cache.
        (7, "ALTER TABLE repo ADD COLUMN requeued INTEGER NOT NULL DEFAULT 0"),
        // Lexical search (SQLiteStore+Lexical): FTS5 over the record's words, kept by triggers
        // (plain SQL: a collector's or an older version's writes keep it too), filled from the
        // repos already stored.
        (8, SQLiteLexical.migration),
        // Each provider account's rate limits shared by the instances (RateLimitLedger, as JSON),
        // and the batch jobs of `backfill --batch-api` (BatchJob, as JSON).
        (9, """
            CREATE TABLE embed_star_rate_limit (account TEXT PRIMARY KEY, ledger TEXT NOT NULL);
            CREATE TABLE embed_star_batch_job (id TEXT PRIMARY KEY, created_at REAL NOT NULL, job TEXT NOT NULL);
            """),
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

    /// The newest version this binary knows.
    static var newest: Int { steps.last!.version }  // steps is a non-empty literal

    /// Applies what is missing (up to `last`); returns the versions it applied.

    static func apply(_ db: Database, through last: Int = .max) throws -> [Int] {
        var applied: [Int] = []
        try db.inTransaction(.immediate) {
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS embed_star_migration (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            let done = Set(try Int.fetchAll(db, sql: "SELECT version FROM embed_star_migration"))
            if let newest = done.max(), newest > steps.last!.version {  // steps is a non-empty literal
                throw SQLiteStoreError("the database was migrated by a newer embed-star (schema version \(newest), this one knows \(steps.last!.version))")
            }
            for step in steps where !done.contains(step.version) && step.version <= last {
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
