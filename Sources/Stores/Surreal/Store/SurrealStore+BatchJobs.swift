import EmbedStarCore
import Foundation
import SurrealClient

/// `backfill --batch-api`'s jobs: one record each, `embed_star_batch_job:⟨id⟩`, the job as JSON
/// text (``BatchJob``) with when it was made.
extension SurrealStore {
    static let batchJobTable = "embed_star_batch_job"

    public func saveBatchJob(_ job: BatchJob) async throws {
        let record = try await dialect().recordFunction
        let encoded = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        _ = try await retryingConflicts {
            try await self.client.query("UPSERT \(record)('\(Self.batchJobTable)', $id) SET job = $job, created_at = $created RETURN NONE", [
                "id": .string(job.id), "job": .string(encoded), "created": .double(job.createdAt.timeIntervalSince1970),
            ])
        }
    }

    public func batchJobs() async throws -> [BatchJob] {
        // (2.x orders only by a field it selects.)
        let rows = try await client.query("SELECT job, created_at FROM \(Self.batchJobTable) ORDER BY created_at").last?.array ?? []
        return try rows.compactMap { $0["job"]?.string }.map { try JSONDecoder().decode(BatchJob.self, from: Data($0.utf8)) }
    }

    public func removeBatchJob(_ id: String) async throws {
        let record = try await dialect().recordFunction
        _ = try await retryingConflicts {
            try await self.client.query("DELETE \(record)('\(Self.batchJobTable)', $id) RETURN NONE", ["id": .string(id)])
        }
    }

}
