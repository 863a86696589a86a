import EmbedStarCore
import Foundation
import Logging
import Synchronization
import SurrealClient

/// Failures, releases, renewals, and the collector-side upsert.
extension SurrealStore {
    public func recordFailures(_ failures: [RepoFailure], owner: String, maxAttempts: Int) async throws -> [RepoID: FailureOutcome] {
        guard !failures.isEmpty else { return [:] }
        var statements = ["BEGIN TRANSACTION", "LET $now = time::now()"]
        var variables: [String: SurrealValue] = ["owner": .string(owner), "max": .int(Int64(maxAttempts))]
        for (index, failure) in failures.enumerated() {
            variables["q\(index)"] = queueID(failure.id)
            variables["r\(index)"] = recordID(failure.id)
            variables["why\(index)"] = .string(failure.reason)
            variables["p\(index)"] = .bool(failure.permanent)
            variables["after\(index)"] = .duration(SurrealDuration(failure.retryAfter))
            variables["n\(index)"] = .int(Int64(failure.revision) ?? -1)
            // Counted only against the claimed revision: a failure of a text the collector has
            // changed since ends the lease and nothing else (the new text is tried at once).
            statements.append("""
                LET $a\(index) = (UPDATE $q\(index) SET failed = $p\(index) OR (attempts ?? 0) + 1 >= $max, \
                attempts = (attempts ?? 0) + 1, last_error = $why\(index), lease_owner = NONE, lease_until = \(Migrations.epoch), \
                not_before = $now + $after\(index) WHERE lease_owner = $owner AND revision = $n\(index) RETURN AFTER)
                """)
            statements.append("IF array::len($a\(index)) > 0 { UPDATE $r\(index) SET embedding_attempts = $a\(index)[0].attempts, embedding_error = $why\(index) RETURN NONE } "
                + "ELSE { UPDATE $q\(index) SET lease_owner = NONE, lease_until = \(Migrations.epoch) WHERE lease_owner = $owner RETURN NONE }")
        }
        statements.append("COMMIT TRANSACTION")
        // The entries this owner updated (a lost lease updates nothing and reports nothing).
        statements.append("RETURN array::flatten([\(failures.indices.map { "$a\($0)" }.joined(separator: ", "))])")
        let results = try await retryingConflicts { try await self.client.query(statements.joined(separator: ";\n"), variables) }
        var byQueueID: [SurrealValue: SurrealValue] = [:]
        for entry in results.last?.array ?? [] { if let id = entry["id"] { byQueueID[id] = entry } }
        var outcomes: [RepoID: FailureOutcome] = [:]
        for failure in failures {
            guard let entry = byQueueID[queueID(failure.id)], let attempts = entry["attempts"]?.int else { continue }
            outcomes[failure.id] = entry["failed"]?.bool == true ? .failed(attempts: Int(attempts)) : .willRetry(attempts: Int(attempts))
        }
        return outcomes
    }

    public func release(_ ids: [RepoID], owner: String) async throws {
        guard !ids.isEmpty else { return }
        _ = try await retryingConflicts {
            try await self.client.query("UPDATE $ids SET lease_owner = NONE, lease_until = \(Migrations.epoch) WHERE lease_owner = $owner RETURN NONE",
                                        ["ids": .array(ids.map(self.queueID)), "owner": .string(owner)])
        }
    }

    public func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID> {
        guard !ids.isEmpty else { return [] }
        let results = try await retryingConflicts {
            try await self.client.query("UPDATE $ids SET lease_until = time::now() + $lease WHERE lease_owner = $owner RETURN VALUE repo",
                                        ["ids": .array(ids.map(self.queueID)), "owner": .string(owner),
                                         "lease": .duration(SurrealDuration(leaseDuration))])
        }
        await markRunning(owner)
        let renewed = Set((results.last?.array ?? []).compactMap { $0.recordID })
        return Set(ids.filter { id in
            if case .recordID(let record) = recordID(id) { return renewed.contains(record) }
            return false
        })
    }

    /// The owner is running while it renews (a batch slower than the liveness window must not
    /// hand the queue to another model's instances): its instance record is seen now, at most
    /// every `heartbeatEvery`, apart from the renewal and best effort (a failure here never fails
    /// a renewal; the next claim records the owner anyway).
    func markRunning(_ owner: String) async {
        let now = ContinuousClock.now
        let due = queueState.withLock { state -> Bool in
            if let last = state.seenMarked, now - last < Self.heartbeatEvery { return false }
            state.seenMarked = now
            return true
        }
        guard due, let record = try? await dialect().recordFunction else { return }
        _ = try? await client.query("UPDATE \(record)('embed_star_instance', $owner) SET seen_at = time::now() RETURN NONE", ["owner": .string(owner)])
    }

    public func releaseAll(owner: String, except: Set<RepoID>) async throws -> Int {
        let results = try await retryingConflicts {
            try await self.client.query("""
                LET $freed = (UPDATE \(queue) SET lease_owner = NONE, lease_until = \(Migrations.epoch) \
                WHERE lease_owner = $owner AND repo NOTINSIDE $except RETURN id);
                RETURN array::len($freed);
                """, ["owner": .string(owner), "except": .array(except.map(self.recordID))])
        }
        return Int(results.last?.int ?? 0)
    }

    public func upsert(_ repos: [Repo]) async throws {
        for start in stride(from: 0, to: repos.count, by: 200) {
            var statements: [String] = []
            var variables: [String: SurrealValue] = [:]
            for (index, repo) in repos[start..<min(start + 200, repos.count)].enumerated() {
                guard case .object(var fields) = SurrealValue(json: repo.jsonValue) else { continue }
                fields["id"] = nil
                variables["i\(index)"] = recordID(repo.id)
                variables["f\(index)"] = .object(fields)
                // MERGE keeps embed-star's own fields; the events see only the collector's.
                statements.append("UPSERT $i\(index) MERGE $f\(index) RETURN NONE")
            }
            _ = try await retryingConflicts { try await self.client.query(statements.joined(separator: ";\n"), variables) }
        }
    }

    /// Per repo that exists: its stored hash and last error cleared (no event fires: those
    /// fields are not watched), and its queue entry made or renewed as a change would, with a
    /// new revision (a write in flight is refused), no lease and no attempts, queued as of now and
    /// marked `requeued` (the entry goes when a write lands).
    public func requeue(_ ids: [RepoID]) async throws -> Int {
        let ids = Array(Set(ids))
        guard !ids.isEmpty else { return 0 }
        var statements = ["BEGIN TRANSACTION"]
        var variables: [String: SurrealValue] = [:]
        for (index, id) in ids.enumerated() {
            variables["r\(index)"] = recordID(id)
            variables["q\(index)"] = queueID(id)
            statements.append("LET $e\(index) = (UPDATE $r\(index) SET embedding_hash = NONE, embedding_error = NONE, embedding_attempts = NONE RETURN VALUE embedding_model)")
            statements.append("""
                IF array::len($e\(index)) > 0 { UPSERT $q\(index) SET stale = false, repo = $r\(index), \
                revision = (revision ?? rand::int(0, 1000000000)) + 1, failed = false, attempts = 0, last_error = NONE, \
                lease_owner = NONE, lease_until = \(Migrations.epoch), not_before = \(Migrations.epoch), had = $e\(index)[0], \
                queued_at = time::now(), requeued = true RETURN NONE }
                """)
        }
        statements.append("COMMIT TRANSACTION")
        statements.append("RETURN math::sum([\(ids.indices.map { "array::len($e\($0))" }.joined(separator: ", "))])")
        let results = try await retryingConflicts { try await self.client.query(statements.joined(separator: ";\n"), variables) }
        return Int(results.last?.int ?? 0)
    }

    public func resetFailed() async throws -> Int {
        let results = try await retryingConflicts {
            try await self.client.query("""
                LET $reset = (UPDATE \(queue) SET failed = false, attempts = 0, not_before = \(Migrations.epoch), queued_at = time::now() WHERE failed = true RETURN id);
                RETURN array::len($reset);
                """)
        }
        return Int(results.last?.int ?? 0)
    }
}
