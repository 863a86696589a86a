import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Conditional writes and failures, at the claimed revision under the caller's lease.
extension SQLiteStore {
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
                        """, arguments: [vector.count, hash, generatedAt.timeIntervalSince1970, write.modelIdentity, write.id.rawValue])
                    try Self.storeVector(db, vector, seq: row["seq"])
                case .unchanged(let hash):
                    try db.execute(sql: """
                        UPDATE repo SET embedding_hash = ?, embedding_model = ?, embedded_revision = revision, attempts = 0,
                          last_error = NULL, not_before = NULL, lease_owner = NULL, lease_expires = NULL, requeued = 0
                        WHERE id = ?
                        """, arguments: [hash, write.modelIdentity, write.id.rawValue])
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
}
