import EmbedStarCore
import Foundation
import Logging
import Synchronization
import SurrealClient

/// Claims: pending repos handed out under a lease, from the event-fed queue.
extension SurrealStore {
    public func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        guard try await reconcile(request) else { return [] }
        while true {
            let unfinished = try await sweepChunk(model: request.modelIdentity, owner: request.owner)
            let claimed = try await claimQueued(request)
            // Empty while the sweep is unfinished is not "nothing pending": wait for it.
            if !claimed.isEmpty { return claimed }
            if !unfinished {
                // Part of the answer, not idle work: repos neither embedded nor queued are
                // queued now, so an empty claim means nothing is pending.
                if try await recheckQueue(request) { continue }
                return []
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func claimQueued(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        guard try await dialect().claimsOneAtATime else { return try await claimQueuedNow(request) }
        await claimLine.enter()
        do {
            let claimed = try await claimQueuedNow(request)
            await claimLine.leave()
            return claimed
        } catch {
            await claimLine.leave()
            throw error
        }
    }

    private func claimQueuedNow(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        // New and changed repos first; repos only another model embedded (stale) after them,
        // within `staleLimit`. Each select is leased in the same request; the UPDATE's condition
        // makes a repo another instance leased a moment before drop out. Nothing is handed out
        // when the queue serves another model (a newer instance announced it a moment ago).
        // Each claim stamps its entries with a token of its own and hands out only those that
        // still carry it once the UPDATE has committed: SurrealDB's memory and SurrealKV
        // storage let two concurrent conditional UPDATEs of one record both commit (the later
        // one wins, both report success), so the UPDATE's own answer is not proof of a lease.
        // This narrows the race, it does not close it: a claim that commits after another's
        // read-back still hands the entry out twice, and then only the later claim's write
        // lands (the write checks the lease owner); the batch is embedded twice, never stored
        // wrong.
        // The planner prefers the index on `failed` alone, which reads every entry of the other
        // kind (1.3 s at 100,000 stale entries, against 40 ms on the claim index).
        // New and stale entries are selected and leased in one request (an idle poll is one
        // round trip).
        // A server that can lose one of two concurrent writes of a record (the lost-write guards are on) hands out
        // nothing while a sweep runs: a claim racing a sweep chunk's re-queueing of the same
        // entries could lose either write, and the batch would be embedded twice.
        let bothCommit = try await dialect().claimsOneAtATime
        let sweepDone = bothCommit ? " AND (SELECT VALUE finished FROM ONLY embed_star_meta:sweep) != false" : ""
        // One transaction: the model the queue serves and the sweep's state are read with the
        // leases taken, so a claim cannot lease for a model the queue no longer serves (an
        // entry a new model's sweep re-queued, leased by the old model and written with its
        // vector, would be left with no entry).
        let pause = claimPause.withLock { $0 }.map { "IF $served { sleep(\(Int($0 / .milliseconds(1)))ms) };\n" } ?? ""
        let claimSQL = """
            BEGIN TRANSACTION;
            LET $now = time::now();
            LET $served = (SELECT VALUE model FROM ONLY embed_star_meta:queue) = $model\(sweepDone);
            \(pause)
            LET $fresh = array::flatten([IF !$served { [] } ELSE {
                (SELECT VALUE id FROM \(queue) WITH INDEX embed_queue_claim WHERE stale = false AND failed = false AND lease_until < $now AND not_before <= $now LIMIT $limit) }]);
            LET $room = math::min([$limit - array::len($fresh), $stale_limit]);
            LET $old = array::flatten([IF !$served OR $room <= 0 { [] } ELSE {
                (SELECT VALUE id FROM \(queue) WITH INDEX embed_queue_claim WHERE stale = true AND failed = false AND lease_until < $now AND not_before <= $now LIMIT $room) }]);
            LET $ids = array::concat($fresh, $old);
            LET $stamped = (UPDATE $ids SET lease_owner = $owner, lease_model = $model, lease_token = $stamp, lease_until = $now + $lease
                WHERE failed = false AND lease_until < $now RETURN VALUE id);
            \(bothCommit ? "LET $leased = $stamped" : "LET $leased = (SELECT * FROM $stamped WHERE lease_token = $stamp)");
            RETURN [array::len($ids), $leased, \(bothCommit ? "[]" : Self.claimedRecords)];
            COMMIT TRANSACTION;
            """
        // Where both of two concurrent writes can commit (the guards are on), the stamps are read back after
        // the commit: inside the transaction the claim would only read its own write.
        let verifySQL = """
            LET $leased = (SELECT * FROM $stamped WHERE lease_token = $stamp);
            RETURN [$leased, \(Self.claimedRecords)];
            """
        let variables: [String: SurrealValue] = [
            "limit": .int(Int64(request.limit)), "stale_limit": .int(Int64(max(0, request.staleLimit ?? request.limit))),
            "owner": .string(request.owner), "lease": .duration(SurrealDuration(request.leaseDuration)),
            "model": .string(request.modelIdentity), "stamp": .string(UUID().uuidString),
        ]
        // Another instance may lease what this one selected a moment before: then this one
        // selects again, so an empty answer always means nothing is pending.
        var leased: [SurrealValue] = [], records: [SurrealValue] = []
        for _ in 0..<10 {
            let answer = try await retryingConflicts { try await self.client.query(claimSQL, variables).last { $0.array != nil }?.array ?? [] }
            guard answer.count == 3 else { throw SurrealError(.protocolViolation, "the claim answered \(answer.count) values, not 3") }
            leased = answer[1].array ?? []
            records = answer[2].array ?? []
            if bothCommit, !leased.isEmpty {
                var verifying = variables
                verifying["stamped"] = .array(leased)
                let verified = try await client.query(verifySQL, verifying).last?.array ?? []
                guard verified.count == 2 else { throw SurrealError(.protocolViolation, "the claim's check answered \(verified.count) values, not 2") }
                leased = verified[0].array ?? []
                records = verified[1].array ?? []
            }
            if !leased.isEmpty || (answer[0].int ?? 0) == 0 { break }
        }
        guard !leased.isEmpty else { return [] }
        var byID: [RecordID: SurrealValue] = [:]
        for record in records { if let id = record["id"]?.recordID { byID[id] = record } }

        var claimed: [ClaimedRepo] = []
        var unreadable: [(SurrealValue, String)] = []
        var gone: [SurrealValue] = []
        for entry in leased {
            guard let repoValue = entry["repo"], let repoID = repoValue.recordID, let queueID = entry["id"] else { continue }
            guard let record = byID[repoID] else {
                gone.append(queueID)
                continue
            }
            switch Repo.decode(record.json, fallbackName: repoID.description) {
            case .success(let repo):
                // The stored hash vouches for the text only while the vector it came with is there.
                let embeddedHash = record["embedding_model"]?.string == request.modelIdentity && record["embedding_held"]?.bool == true
                    ? record["embedding_hash"]?.string : nil
                claimed.append(ClaimedRepo(repo: repo, revision: String(entry["revision"]?.int ?? 0), embeddedHash: embeddedHash,
                                           attempts: Int(entry["attempts"]?.int ?? 0), stale: entry["stale"]?.bool == true,
                                           requeued: entry["requeued"]?.bool == true))
            case .failure(let error):
                unreadable.append((queueID, error.description))
            }
        }
        if !gone.isEmpty {
            _ = try await client.query("DELETE $ids", ["ids": .array(gone)])
        }
        for (queueID, reason) in unreadable {
            // A record that cannot be read never returns to the queue until it changes.
            logger.warning("repo record cannot be read; marked failed", metadata: ["reason": "\(reason)"])
            _ = try await client.query("UPDATE $q SET failed = true, last_error = $reason, lease_owner = NONE, lease_until = \(Migrations.epoch)",
                                       ["q": queueID, "reason": .string(reason)])
        }
        return claimed
    }

    /// The repo records of the entries in `$leased`, without their vectors, and whether each
    /// holds one.
    static let claimedRecords = "(SELECT *, embedding != NONE AS embedding_held OMIT embedding FROM $leased.repo)"

    func queueID(_ id: RepoID) -> SurrealValue {
        let record = RecordID(parsing: id.rawValue) ?? RecordID(table: table, id: .string(id.rawValue))
        return .recordID(queueRecord(of: record.id))
    }

    /// The queue entry of the repo with key `key`, as the engine names it in the events
    /// (`type::thing('embed_queue', record::id(...))`): SurrealDB 2.x turns a uuid key into its
    /// text there (arrays and objects keep their uuids), 3.x keeps it.
    func queueRecord(of key: SurrealValue) -> RecordID {
        if case .uuid(let uuid) = key, (preparedDialect.withLock { $0 }?.major ?? 3) < 3 {
            return RecordID(table: queue, id: .string(uuid.uuidString.lowercased()))
        }
        return RecordID(table: queue, id: key)
    }

    func recordID(_ id: RepoID) -> SurrealValue {
        .recordID(RecordID(parsing: id.rawValue) ?? RecordID(table: table, id: .string(id.rawValue)))
    }
}
