import EmbedStarCore
import Foundation
import Logging
import Synchronization
import SurrealClient

/// Counts, search and the report's scan: reads that never write.
extension SurrealStore {
    public func stats(modelIdentity model: String) async throws -> StoreStats {
        try await queueCounts(model: model).stats
    }

    /// The queue holds exactly the pending and failed repos (a repo embedded by another model is
    /// queued by the model change's sweep); entries made before they recorded `queued_at`
    /// (migration 4) have no time and are left out.
    public func oldestPendingSince(modelIdentity model: String) async throws -> Date? {
        let answer = try await client.query("""
            SELECT VALUE queued_at FROM \(queue) WHERE failed = false AND queued_at != NONE ORDER BY queued_at LIMIT 1
            """).last?.array?.first
        if case .datetime(let value)? = answer { return value.date }
        return nil
    }

    /// Vectors per model, from the model index: the models one index step each (the next model
    /// after the last one found), then each model's count in one request. Grouping the table by
    /// model instead reads every record, vectors included (9.5 s at 100,000 repos on 3.2).
    public func coverage() async throws -> [String: Int] {
        let models = try await storedModels()
        guard !models.isEmpty else { return [:] }
        var variables: [String: SurrealValue] = [:]
        let counts = models.enumerated().map { index, model in
            variables["m\(index)"] = .string(model)
            return Self.count(table, where: "embedding_model", is: model, parameter: "$m\(index)")
        }
        let values = try await client.query("RETURN [\(counts.joined(separator: ", "))]", variables).last?.array ?? []
        guard values.count == models.count else { throw SurrealError(.protocolViolation, "the vector counts by model came back incomplete") }
        return Dictionary(uniqueKeysWithValues: zip(models, values.map { Int($0.int ?? 0) }))
    }

    /// The models of the vectors the repo table holds, in order, one step through the model's
    /// index each.
    func storedModels() async throws -> [String] {
        var models: [String] = []
        while let next = try await client.query(
            "SELECT VALUE embedding_model FROM \(table) WHERE embedding_model > $after ORDER BY embedding_model LIMIT 1",
            ["after": .string(models.last ?? "")]
        ).last?.array?.first?.string, !models.contains(next) {
            models.append(next)
        }
        return models
    }

    public func nearest(to vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        if indexCheckedAt.withLock({ $0 }) == nil { try await loadIndexState() }
        // The index answers in full once built; while the engine still builds it (concurrently) or
        // when fewer vectors than `limit` exist, it may answer short: then the exact scan does.
        if let hits = try await nearestIndexed(vector, limit: limit, filter: filter), hits.count >= limit { return hits }
        var conditions = ["embedding != NONE", "array::len(embedding) = $dimensions"]
        var variables: [String: SurrealValue] = ["q": .floats(vector), "limit": .int(Int64(limit)), "dimensions": .int(Int64(vector.count))]
        if let language = filter.language {
            conditions.append("string::lowercase(language ?? '') = $language")
            variables["language"] = .string(language.lowercased())
        }
        if let model = filter.modelIdentity {
            conditions.append("embedding_model = $model")
            variables["model"] = .string(model)
        }
        let sql = """
            SELECT *, vector::similarity::cosine(embedding, $q) AS score OMIT embedding FROM \(table) \
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY score DESC LIMIT $limit
            """
        let rows = try await client.query(sql, variables).first?.array ?? []
        return rows.compactMap { row in
            guard case .success(let repo) = Repo.decode(row.json, fallbackName: "search result") else { return nil }
            return SearchHit(repo: repo, score: row["score"]?.double ?? 0)
        }
    }

    /// Whether record ids are in ascending key order (all numbers, or all strings); false when
    /// that cannot be told here (mixed or other key types).
    static func ascending(_ ids: [RecordID]) -> Bool {
        var numbers: [Int64] = [], strings: [String] = []
        for id in ids {
            switch id.id {
            case .int(let value): numbers.append(value)
            case .string(let value): strings.append(value)
            default: return false
            }
        }
        guard numbers.isEmpty || strings.isEmpty else { return false }
        return zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 }
            && zip(strings, strings.dropFirst()).allSatisfy { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Pages in record-id order; the cursor is the last record id of the page. A repo's state
    /// follows `stats`: failed when its queue entry is, embedded when it holds the model's vector
    /// and has no queue entry, pending otherwise.
    public func scan(modelIdentity model: String, after: String?, limit: Int) async throws -> ScanPage {
        guard limit > 0 else { return ScanPage(repos: [], next: after) }
        var variables: [String: SurrealValue] = ["limit": .int(Int64(limit))]
        var condition = ""
        if let after {
            variables["after"] = recordID(RepoID(after))
            condition = "WHERE id > $after"
        }
        // Without ORDER BY the engine reads the id range in key order (ORDER BY id sorts the whole
        // table for every page: 0.45 s a page at 10,000 repos on 2.3.10, against 0.03 s). The
        // order is checked; a page that is not ascending is read again sorted.
        var records = try await client.query("SELECT * FROM \(table) \(condition) LIMIT $limit", variables).last?.array ?? []
        if !Self.ascending(records.compactMap { $0["id"]?.recordID }) {
            records = try await client.query("SELECT * FROM \(table) \(condition) ORDER BY id LIMIT $limit", variables).last?.array ?? []
        }
        // The queue entries of the page, read by id (a second request: reading them by `repo`
        // would scan the whole queue for every page).
        let ids = records.compactMap { $0["id"]?.recordID }.map { SurrealValue.recordID(queueRecord(of: $0.id)) }
        var entries: [RecordID: SurrealValue] = [:]
        if !ids.isEmpty {
            let found = try await client.query("SELECT id, failed, attempts, last_error, queued_at FROM $ids", ["ids": .array(ids)]).last?.array ?? []
            for entry in found {
                if let id = entry["id"]?.recordID { entries[id] = entry }
            }
        }
        var repos: [StoredRepo] = []
        var unreadable = 0
        var last: String?
        for record in records {
            guard let id = record["id"]?.recordID else { continue }
            last = id.plainDescription
            guard let stored = storedRepo(record, entry: entries[queueRecord(of: id.id)], model: model) else {
                unreadable += 1
                continue
            }
            repos.append(stored)
        }
        return ScanPage(repos: repos, next: records.count < limit ? nil : last, unreadable: unreadable)
    }

    /// A repo record and its queue entry (nil: none) as a stored repo, in the state `stats`
    /// decides; nil when the record cannot be read.
    func storedRepo(_ record: SurrealValue, entry: SurrealValue?, model: String) -> StoredRepo? {
        guard let id = record["id"]?.recordID, case .success(let repo) = Repo.decode(record.json, fallbackName: id.description) else { return nil }
        let embeddingModel = record["embedding_model"]?.string
        let state: StoredRepo.State = entry?["failed"]?.bool == true ? .failed
            : entry == nil && embeddingModel == model ? .embedded : .pending
        var generatedAt: Date?, queuedAt: Date?
        if case .datetime(let value) = record["embedding_generated_at"] { generatedAt = value.date }
        if case .datetime(let value) = entry?["queued_at"] { queuedAt = value.date }
        return StoredRepo(repo: repo, state: state, embedding: record["embedding"]?.floatArray, embeddingModel: embeddingModel,
                          embeddingHash: record["embedding_hash"]?.string, embeddingGeneratedAt: generatedAt,
                          attempts: Int(entry?["attempts"]?.int ?? 0),
                          lastError: entry == nil ? nil : entry?["last_error"]?.string ?? record["embedding_error"]?.string,
                          pendingSince: state == .pending ? queuedAt : nil)
    }

    public func find(_ reference: String, modelIdentity model: String) async throws -> [StoredRepo] {
        var records: [SurrealValue] = []
        if let id = RecordID(parsing: reference), id.table == table {
            records = try await client.query("SELECT * FROM $id", ["id": .recordID(id)]).last?.array ?? []
        }
        if records.isEmpty {
            // The ids first (a scan of the table: no index on names; the vectors are not read),
            // then their records. A full_name that is not a string is compared as text.
            let ids = try await client.query("SELECT VALUE id FROM \(table) WHERE string::lowercase(<string> (full_name ?? '')) = $name",
                                             ["name": .string(reference.lowercased())]).last?.array ?? []
            if !ids.isEmpty { records = try await client.query("SELECT * FROM $ids", ["ids": .array(ids)]).last?.array ?? [] }
        }
        let ids = records.compactMap { $0["id"]?.recordID }.map { SurrealValue.recordID(queueRecord(of: $0.id)) }
        guard !ids.isEmpty else { return [] }
        let found = try await client.query("SELECT *, lease_until > time::now() AS leased FROM $ids", ["ids": .array(ids)]).last?.array ?? []
        var entries: [RecordID: SurrealValue] = [:]
        for entry in found {
            if let id = entry["id"]?.recordID { entries[id] = entry }
        }
        return records.compactMap { record in
            guard let id = record["id"]?.recordID else { return nil }
            let entry = entries[queueRecord(of: id.id)]
            guard var stored = storedRepo(record, entry: entry, model: model) else { return nil }
            if entry?["leased"]?.bool == true, let owner = entry?["lease_owner"]?.string, case .datetime(let until) = entry?["lease_until"] {
                stored.leaseOwner = owner
                stored.leaseExpires = until.date
            }
            return stored
        }
    }

    /// Reads the schema version and the model the queue serves, writing nothing.
    public func openForReading() async throws -> StoreSchema {
        _ = try await dialect()
        let required = Migrations.newest
        let tables = try await client.query("INFO FOR DB").last?["tables"]
        guard tables?["embed_star_migration"] != nil else { return StoreSchema(version: 0, required: required) }
        let answer = try await client.query("""
            SELECT VALUE record::id(id) FROM embed_star_migration;
            SELECT VALUE model FROM ONLY embed_star_meta:queue;
            SELECT VALUE table FROM ONLY embed_star_meta:schema;
            """)
        guard answer.count == 3 else { throw SurrealError(.protocolViolation, "the schema read came back with \(answer.count) results, not 3") }
        if let recorded = answer[2].string, recorded != table {
            throw Self.otherTable(recorded, configured: table)
        }
        let version = answer[0].array?.compactMap(\.int).max().map(Int.init) ?? 0
        return StoreSchema(version: version, required: required, servedModelIdentity: answer[1].string)
    }
}
