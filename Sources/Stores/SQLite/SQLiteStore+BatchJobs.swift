import EmbedStarCore
import Foundation
import GRDB

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
