import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Claims: the served model decided and pending repos leased in one IMMEDIATE transaction.
extension SQLiteStore {
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
                """, arguments: [request.modelIdentity, now, request.limit])
            let room = min(request.limit - rows.count, request.staleLimit ?? .max)
            if room > 0 {
                rows += try Row.fetchAll(db, sql: """
                    SELECT id, record, revision, embedding_model, CASE WHEN EXISTS (SELECT 1 FROM repo_vector v WHERE v.repo = repo.seq) THEN embedding_hash END AS embedding_hash, attempts, 1 AS stale, requeued FROM repo
                    WHERE \(SQLiteMigrations.staleForModel1) AND \(free) LIMIT ?3
                    """, arguments: [request.modelIdentity, now, room])
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
                                               embeddedHash: model == request.modelIdentity ? row["embedding_hash"] : nil,
                                               attempts: row["attempts"], stale: row["stale"], requeued: row["requeued"]))
                }
            }
            return (claimed, unreadable)
        }
        for (id, reason) in unreadable {
            logger.warning("marked an unreadable record failed", metadata: ["repo": "\(id)", "reason": "\(reason)"])
        }
        return claimed
    }

    /// Records the owner as running (in the claim's transaction); true when its model is the one
    /// of the most recently started running owner.
    static func serves(_ request: ClaimRequest, now: Double, _ db: Database) throws -> Bool {
        try db.execute(sql: """
            INSERT INTO embed_star_instance (owner, model, started_at, seen_at) VALUES (?1, ?2, ?3, ?3)
            ON CONFLICT (owner) DO UPDATE SET started_at = CASE WHEN model = excluded.model THEN started_at ELSE excluded.started_at END,
              model = excluded.model, seen_at = excluded.seen_at
            """, arguments: [request.owner, request.modelIdentity, now])
        try db.execute(sql: "DELETE FROM embed_star_instance WHERE seen_at < ?", arguments: [now - ClaimRequest.ownerRetention.seconds])
        let served = try String.fetchOne(db, sql: """
            SELECT model FROM embed_star_instance WHERE seen_at >= ? ORDER BY started_at DESC, owner DESC LIMIT 1
            """, arguments: [now - request.liveness.seconds])
        return served == request.modelIdentity
    }
}
