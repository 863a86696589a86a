import EmbedStarCore
import Foundation
import GRDB

/// The provider account's rate limits, shared by the instances using this database
/// (``RepoStore/shareRateLimit(_:)``): one row per account holding its ``RateLimitLedger``,
/// read and written in one transaction (SQLite runs one writer at a time, so two reports never
/// lose each other).
extension SQLiteStore {
    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare {
        try await transaction { db in
            let stored = try String.fetchOne(db, sql: "SELECT ledger FROM embed_star_rate_limit WHERE account = ?", arguments: [report.account])
            var ledger = RateLimitLedger()
            if let stored, let decoded = try? JSONDecoder().decode(RateLimitLedger.self, from: Data(stored.utf8)) {
                ledger = decoded  // a row that cannot be read is started again
            }
            let share = ledger.record(report, now: Date())
            let encoded = String(decoding: try JSONEncoder().encode(ledger), as: UTF8.self)
            try db.execute(sql: """
                INSERT INTO embed_star_rate_limit (account, ledger) VALUES (?, ?)
                ON CONFLICT (account) DO UPDATE SET ledger = excluded.ledger
                """, arguments: [report.account, encoded])
            return share
        }
    }

    public var sharesRateLimits: Bool { true }
}

/// `backfill --batch-api`'s jobs, one row each (``BatchJob`` as JSON).
extension SQLiteStore {
    public func saveBatchJob(_ job: BatchJob) async throws {
        let encoded = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        try await transaction { db in
            try db.execute(sql: """
                INSERT INTO embed_star_batch_job (id, created_at, job) VALUES (?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET job = excluded.job
                """, arguments: [job.id, job.createdAt.timeIntervalSince1970, encoded])
        }
    }

    public func batchJobs() async throws -> [BatchJob] {
        let rows = try await transaction { db in
            try String.fetchAll(db, sql: "SELECT job FROM embed_star_batch_job ORDER BY created_at, id")
        }
        return try rows.map { try JSONDecoder().decode(BatchJob.self, from: Data($0.utf8)) }
    }

    public func removeBatchJob(_ id: String) async throws {
        try await transaction { db in try db.execute(sql: "DELETE FROM embed_star_batch_job WHERE id = ?", arguments: [id]) }
    }
}
