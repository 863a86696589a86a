import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// Releases, renewals, failed repos put back, requeues, and the collector-side upsert.
extension SQLiteStore {
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
}
