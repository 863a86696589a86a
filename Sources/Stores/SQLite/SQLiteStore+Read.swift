import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Counts, the oldest pending repo, the report's scan and one repo's record: reads that never write.
extension SQLiteStore {
    public func stats(modelIdentity model: String) async throws -> StoreStats {
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

    public func oldestPendingSince(modelIdentity model: String) async throws -> Date? {
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

    public func scan(modelIdentity model: String, after: String?, limit: Int) async throws -> ScanPage {
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
    static let storedColumns = """
        r.seq, r.id, r.record, r.failed, r.current, r.embedding_model, r.embedding_hash, r.embedding_generated_at,
          r.attempts, r.last_error, r.changed_at, r.lease_owner, r.lease_expires, v.vector
        """

    /// A row of ``storedColumns`` as a stored repo; nil when its record cannot be read.
    static func storedRepo(_ row: Row, model: String) -> StoredRepo? {
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

    public func find(_ reference: String, modelIdentity model: String) async throws -> [StoredRepo] {
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
}
