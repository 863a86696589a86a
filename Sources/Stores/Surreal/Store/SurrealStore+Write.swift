import EmbedStarCore
import Foundation
import Logging
import Synchronization
import SurrealClient

/// Conditional writes: a vector lands only while the lease is held at the claimed revision.
extension SurrealStore {
    /// One transaction per chunk. Each write first deletes its queue entry, but only if it is
    /// still leased to `owner` at the claimed revision and its model is the one the queue
    /// serves, and updates the repo only if that delete
    /// took the entry; entries a write could not take are read back (their lease or revision
    /// says why), and those this owner still holds at a newer revision are released.
    ///
    /// Plain statements with a variable each, generated for the chunk's shape, not one `FOR` over
    /// an array of objects: the engine copies each vector out of the array it reads in a loop,
    /// and a set-based check (`[id, revision] INSIDE $keys`) compares every pair, while parsing
    /// the statements costs little (measured against the engine: bench/write_statements.py).
    ///
    /// `quiet` (3.x, ``QuietWriteState``): the repo UPDATEs run in import mode, and each carries
    /// its condition (`WHERE $dN`: the entry its delete took, or nothing) instead of an `IF`
    /// around it: the same writes ran at 68-75% of a plain table's rate against 60-61% in `IF`
    /// blocks (3.2.4, 384 dimensions, side by side). The deletes come first, all of them: in
    /// import mode 3.x returns nothing from a DELETE, and a delete that answered nothing would
    /// leave its repo without the vector and the queue without the entry.
    static func writeSQL(vectors: [Bool], quiet: Bool = false) -> String {
        // A write lands only for the model the queue serves: after a model change (or a
        // rollback) a claim of the old model's holder writes nothing, whatever its revision.
        var lines = ["BEGIN TRANSACTION", "LET $now = time::now()", "LET $served = (SELECT VALUE model FROM ONLY embed_star_meta:queue)"]
        let update = { (index: Int, hasVector: Bool) -> String in
            let fields = hasVector
                ? "embedding = $v\(index), embedding_model = $m\(index), embedding_hash = $h\(index), embedding_generated_at = $now,"
                : "embedding_model = $m\(index), embedding_hash = $h\(index),"
            return "UPDATE $r\(index) SET \(fields) embedding_attempts = 0, embedding_error = NONE"
        }
        let delete = { (index: Int) -> String in
            "LET $d\(index) = (DELETE $q\(index) WHERE lease_owner = $owner AND revision = $n\(index) AND $served = $m\(index) RETURN BEFORE)"
        }
        if quiet {
            lines += vectors.indices.map(delete)
            lines.append("OPTION IMPORT")
            lines += vectors.enumerated().map { "\(update($0.offset, $0.element)) WHERE $d\($0.offset) RETURN NONE" }
            lines.append("OPTION IMPORT = false")
        } else {
            // Each repo's delete and update side by side, as before quiet writes (what 2.x runs).
            for (index, hasVector) in vectors.enumerated() {
                lines += [delete(index), "IF $d\(index) { \(update(index, hasVector)) RETURN NONE }"]
            }
        }
        lines += [
            "LET $ok = array::flatten([\(vectors.indices.map { "$d\($0)" }.joined(separator: ", "))]).id",
            "LET $left = (SELECT id, lease_owner, revision FROM array::complement($qs, $ok))",
            "LET $moved = (SELECT VALUE id FROM $left WHERE lease_owner = $owner)",
            "IF array::len($moved) > 0 { UPDATE $moved SET lease_owner = NONE, lease_until = \(Migrations.epoch) RETURN NONE }",
            "RETURN { ok: $ok, left: $left }",
            "COMMIT TRANSACTION",
        ]
        return lines.joined(separator: ";\n")
    }

    public func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] {
        var outcomes: [RepoID: WriteOutcome] = [:]
        for chunk in Self.chunks(writes) {
            let queueIDs = chunk.map { queueID($0.id) }
            var variables: [String: SurrealValue] = ["owner": .string(owner), "qs": .array(queueIDs)]
            var vectors: [Bool] = []
            for (index, write) in chunk.enumerated() {
                variables["q\(index)"] = queueIDs[index]
                variables["r\(index)"] = recordID(write.id)
                variables["n\(index)"] = .int(Int64(write.revision) ?? -1)
                variables["m\(index)"] = .string(write.modelIdentity)
                switch write.change {
                case .embedded(let vector, let hash, _):
                    variables["v\(index)"] = .floats(vector)
                    variables["h\(index)"] = .string(hash)
                    vectors.append(true)
                case .unchanged(let hash):
                    variables["h\(index)"] = .string(hash)
                    vectors.append(false)
                }
            }
            let sql = Self.writeSQL(vectors: vectors, quiet: await writesQuietly())
            let results: [SurrealValue]
            do {
                results = try await retryingConflicts { try await self.client.query(sql, variables) }
            } catch let error as SurrealError where error.message.contains("vector dimension") {
                // A new model with another dimension: the old index cannot hold its vectors.
                try await dropIndex()
                results = try await retryingConflicts { try await self.client.query(sql, variables) }
            }
            guard let answer = results.last(where: { $0["ok"] != nil }), let ok = answer["ok"]?.array, let left = answer["left"]?.array else {
                throw SurrealError(.protocolViolation, "write answered no queue state")
            }
            let applied = Set(ok.compactMap(\.recordID))
            var entries: [RecordID: SurrealValue] = [:]
            for entry in left { if let id = entry["id"]?.recordID { entries[id] = entry } }
            for (write, queued) in zip(chunk, queueIDs) {
                guard case .recordID(let id) = queued else {
                    outcomes[write.id] = .notFound
                    continue
                }
                if applied.contains(id) {
                    outcomes[write.id] = .applied
                } else if let entry = entries[id] {
                    outcomes[write.id] = entry["lease_owner"]?.string == owner ? .changedSinceClaim : .leaseLost
                } else {
                    outcomes[write.id] = .notFound
                }
            }
        }
        return outcomes
    }

    static func chunks(_ writes: [RepoWrite]) -> [ArraySlice<RepoWrite>] {
        var chunks: [ArraySlice<RepoWrite>] = []
        var start = 0
        var bytes = 0
        for (index, write) in writes.enumerated() {
            var size = 400
            if case .embedded(let vector, _, _) = write.change { size += vector.count * 5 }
            if index > start, bytes + size > 2_500_000 || index - start >= 500 {
                chunks.append(writes[start..<index])
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < writes.count { chunks.append(writes[start...]) }
        return chunks
    }
}
