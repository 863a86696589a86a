import EmbedStarCore
import Foundation
import Logging
import Synchronization
import SurrealClient

/// Repos in SurrealDB. The pending queue is a table fed by events on the repo table, so a claim
/// reads only pending repos, however many are already embedded; leases, revisions and failures
/// live on the queue entries; vectors and their model, hash, attempts and last error on the repo.
public final class SurrealStore: RepoStore {
    public let configuration: Configuration
    let client: SurrealClient
    let logger: Logger
    let instanceID: String
    /// The SurrealQL of the server's version, known once ``prepare()`` asked it.
    private let preparedDialect = Mutex<SurrealDialect?>(nil)
    /// What this process knows of the queue's model, sweep and check (``QueueState``).
    let queueState = Mutex(QueueState())
    /// Where this instance's claims wait their turn when the server needs them one at a time.
    let claimLine = ClaimLine()
    /// The dimension of the HNSW index on the vectors, once it was built and checked (nil: search by scan).
    let indexedDimensions = Mutex<Int?>(nil)
    /// The dimension of the HNSW index defined, checked or not.
    let indexDefinedDimensions = Mutex<Int?>(nil)
    /// When the index was last considered; it is looked at when the queue runs dry, at most once a minute.
    let indexCheckedAt = Mutex<ContinuousClock.Instant?>(nil)
    /// When the queue's indexes were last checked against the table (servers whose indexes can
    /// miss records; ``repairQueueIndexes(_:)``).
    let queueIndexesCheckedAt = Mutex<ContinuousClock.Instant?>(nil)

    /// Whether `every` has passed since `last` was set (or it never was); if so, `last` is now.
    static func due(_ last: borrowing Mutex<ContinuousClock.Instant?>, every: Duration) -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let last, now - last < every { return false }
            last = now
            return true
        }
    }
    private var table: String { configuration.table }
    private var queue: String { Migrations.queue }

    public init(configuration: Configuration, instanceID: String, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.instanceID = instanceID
        client = SurrealClient(configuration: try configuration.client(), logger: logger)
    }

    /// The server's dialect, asked once (``prepare()`` asks it; a handle used without it asks
    /// when it first needs it).
    func dialect() async throws -> SurrealDialect {
        if let known = preparedDialect.withLock({ $0 }) { return known }
        let dialect = try SurrealDialect(serverVersion: try await client.version())
        if dialect.major > 3 {
            logger.warning("this SurrealDB version is newer than the store was tested on; it is spoken as 3.x", metadata: [
                "server": "\(dialect)", "supported": "\(SurrealDialect.supportedRange)",
            ])
        }
        preparedDialect.withLock { $0 = dialect }
        return dialect
    }

    // MARK: Prepare

    public func prepare() async throws {
        let dialect = try await dialect()
        // Instances starting together conflict on schema writes; the loser reads again and
        // finds the work done.
        try await retryingConflicts { try await self.migrate(dialect) }
    }

    private func migrate(_ dialect: SurrealDialect) async throws {
        var migrations = Migrations(table: configuration.table, watchedFields: configuration.watchedFields, dialect: dialect)
        let found = try await client.query("""
            DEFINE TABLE IF NOT EXISTS embed_star_migration SCHEMALESS;
            SELECT VALUE record::id(id) FROM embed_star_migration;
            """)
        let applied = Set(found.last?.array?.compactMap(\.int) ?? [])
        if migrations.all.contains(where: { !applied.contains(Int64($0.version)) }) {
            // Read before any statement runs: 2.x cannot read INFO inside a statement.
            let info = try await client.query("INFO FOR DB; INFO FOR TABLE \(configuration.table);")
            let table = info.last { $0["fields"] != nil }, database = info.last { $0["tables"] != nil && $0["fields"] == nil }
            migrations.found = Migrations.FoundSchema(
                tableDefinition: database?["tables"]?[configuration.table]?.string,
                vectorDefinition: table?["fields"]?["embedding"]?.string)
        }
        for migration in migrations.all where !applied.contains(Int64(migration.version)) {
            logger.info("applying migration", metadata: [
                "version": "\(migration.version)", "summary": "\(migration.summary)", "server": "\(dialect)",
            ])
            let sql = (["BEGIN TRANSACTION"] + migration.statements + [
                "CREATE \(dialect.recordFunction)('embed_star_migration', \(migration.version)) SET summary = $summary, applied_at = time::now(), applied_by = $instance",
                "COMMIT TRANSACTION",
            ]).joined(separator: ";\n")
            do {
                _ = try await client.query(sql, ["summary": .string(migration.summary), "instance": .string(instanceID)])
            } catch let error as SurrealError where error.message.contains("already exists") {
                logger.info("migration applied by another instance meanwhile", metadata: ["version": "\(migration.version)"])
            }
            for statement in migration.optional {
                do {
                    _ = try await client.query(statement)
                } catch let error as SurrealError where error.kind == .rpc || error.kind == .statement {
                    logger.notice("optional schema statement not supported by this server", metadata: ["error": "\(error.message)"])
                }
            }
        }
    }

    /// Runs `body` again when the transaction conflicted with another instance's.
    /// Up to 16 attempts over about 10 s: SurrealDB 2.x's engine conflicts far more often than
    /// 3.x's when instances start together (schema statements) or sweep and claim at once.
    func retryingConflicts<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as SurrealError where error.kind == .conflict && attempt < 16 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...(20 << min(attempt, 5)))))
            }
        }
    }

    // MARK: Claim

    public func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        guard try await reconcile(request) else { return [] }
        while true {
            let unfinished = try await sweepChunk(model: request.model, owner: request.owner)
            let claimed = try await claimQueued(request)
            // Empty while the sweep is unfinished is not "nothing pending": wait for it.
            if !claimed.isEmpty { return claimed }
            if !unfinished {
                if try await repairQueueIndexes(request) { continue }
                try await maintainIndex(owner: request.owner)
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
        // still carry it once the UPDATE has committed: SurrealDB 2.3's memory and SurrealKV
        // storage let two concurrent conditional UPDATEs of one record both commit (the later
        // one wins, both report success), so the UPDATE's own answer is not proof of a lease.
        // The planner prefers the index on `failed` alone, which reads every entry of the other
        // kind (1.3 s at 100,000 stale entries, against 40 ms on the claim index).
        // New and stale entries are selected and leased in one request (an idle poll is one
        // round trip).
        // A server that can lose one of two concurrent writes of a record (2.x) hands out
        // nothing while a sweep runs: a claim racing a sweep chunk's re-queueing of the same
        // entries could lose either write, and the batch would be embedded twice.
        let sweepDone = try await dialect().claimsOneAtATime ? " AND (SELECT VALUE finished FROM ONLY embed_star_meta:sweep) != false" : ""
        let claimSQL = """
            LET $now = time::now();
            LET $served = (SELECT VALUE model FROM ONLY embed_star_meta:queue) = $model\(sweepDone);
            LET $fresh = array::flatten([IF !$served { [] } ELSE {
                (SELECT VALUE id FROM \(queue) WITH INDEX embed_queue_claim WHERE stale = false AND failed = false AND lease_until < $now AND not_before <= $now LIMIT $limit) }]);
            LET $room = math::min([$limit - array::len($fresh), $stale_limit]);
            LET $old = array::flatten([IF !$served OR $room <= 0 { [] } ELSE {
                (SELECT VALUE id FROM \(queue) WITH INDEX embed_queue_claim WHERE stale = true AND failed = false AND lease_until < $now AND not_before <= $now LIMIT $room) }]);
            LET $ids = array::concat($fresh, $old);
            LET $stamped = (UPDATE $ids SET lease_owner = $owner, lease_model = $model, lease_token = $stamp, lease_until = $now + $lease
                WHERE failed = false AND lease_until < $now RETURN VALUE id);
            LET $leased = (SELECT * FROM $stamped WHERE lease_token = $stamp);
            RETURN [array::len($ids), $leased, (SELECT * OMIT embedding FROM $leased.repo)];
            """
        let variables: [String: SurrealValue] = [
            "limit": .int(Int64(request.limit)), "stale_limit": .int(Int64(max(0, request.staleLimit ?? request.limit))),
            "owner": .string(request.owner), "lease": .duration(SurrealDuration(request.leaseDuration)),
            "model": .string(request.model), "stamp": .string(UUID().uuidString),
        ]
        // Another instance may lease what this one selected a moment before: then this one
        // selects again, so an empty answer always means nothing is pending.
        var leased: [SurrealValue] = [], records: [SurrealValue] = []
        for _ in 0..<10 {
            let answer = try await retryingConflicts { try await self.client.query(claimSQL, variables).last?.array ?? [] }
            guard answer.count == 3 else { throw SurrealError(.protocolViolation, "the claim answered \(answer.count) values, not 3") }
            leased = answer[1].array ?? []
            records = answer[2].array ?? []
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
                let embeddedHash = record["embedding_model"]?.string == request.model ? record["embedding_hash"]?.string : nil
                claimed.append(ClaimedRepo(repo: repo, revision: String(entry["revision"]?.int ?? 0), embeddedHash: embeddedHash,
                                           attempts: Int(entry["attempts"]?.int ?? 0), stale: entry["stale"]?.bool == true))
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

    func queueID(_ id: RepoID) -> SurrealValue {
        let record = RecordID(parsing: id.rawValue) ?? RecordID(table: table, id: .string(id.rawValue))
        return .recordID(RecordID(table: queue, id: record.id))
    }

    func recordID(_ id: RepoID) -> SurrealValue {
        .recordID(RecordID(parsing: id.rawValue) ?? RecordID(table: table, id: .string(id.rawValue)))
    }

    // MARK: Write

    /// One transaction per chunk. Each write first deletes its queue entry, but only if it is
    /// still leased to `owner` at the claimed revision, and updates the repo only if that delete
    /// took the entry; entries a write could not take are read back (their lease or revision
    /// says why), and those this owner still holds at a newer revision are released.
    ///
    /// Plain statements with a variable each, generated for the chunk's shape, not one `FOR` over
    /// an array of objects: the engine copies each vector out of the array it reads in a loop,
    /// and a set-based check (`[id, revision] INSIDE $keys`) compares every pair, while parsing
    /// the statements costs little (measured against the engine: bench/write_statements.py).
    static func writeSQL(vectors: [Bool]) -> String {
        var lines = ["BEGIN TRANSACTION", "LET $now = time::now()"]
        for (index, hasVector) in vectors.enumerated() {
            let fields = hasVector
                ? "embedding = $v\(index), embedding_model = $m\(index), embedding_hash = $h\(index), embedding_generated_at = $now,"
                : "embedding_model = $m\(index), embedding_hash = $h\(index),"
            lines.append("LET $d\(index) = (DELETE $q\(index) WHERE lease_owner = $owner AND revision = $n\(index) RETURN BEFORE)")
            lines.append("IF $d\(index) { UPDATE $r\(index) SET \(fields) embedding_attempts = 0, embedding_error = NONE RETURN NONE }")
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
                variables["m\(index)"] = .string(write.model)
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
            let sql = Self.writeSQL(vectors: vectors)
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

    // MARK: Failures and leases

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
            statements.append("""
                LET $a\(index) = (UPDATE $q\(index) SET failed = $p\(index) OR (attempts ?? 0) + 1 >= $max, \
                attempts = (attempts ?? 0) + 1, last_error = $why\(index), lease_owner = NONE, lease_until = \(Migrations.epoch), \
                not_before = $now + $after\(index) WHERE lease_owner = $owner RETURN AFTER)
                """)
            statements.append("IF array::len($a\(index)) > 0 { UPDATE $r\(index) SET embedding_attempts = $a\(index)[0].attempts, embedding_error = $why\(index) RETURN NONE }")
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
        let renewed = Set((results.last?.array ?? []).compactMap { $0.recordID })
        return Set(ids.filter { id in
            if case .recordID(let record) = recordID(id) { return renewed.contains(record) }
            return false
        })
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

    public func resetFailed() async throws -> Int {
        let results = try await retryingConflicts {
            try await self.client.query("""
                LET $reset = (UPDATE \(queue) SET failed = false, attempts = 0, not_before = \(Migrations.epoch) WHERE failed = true RETURN id);
                RETURN array::len($reset);
                """)
        }
        return Int(results.last?.int ?? 0)
    }

    // MARK: Stats, search, health

    public func stats(model: String) async throws -> StoreStats {
        try await queueCounts(model: model).stats
    }

    /// Vectors per model, from the model index: the models one index step each (the next model
    /// after the last one found), then each model's count in one request. Grouping the table by
    /// model instead reads every record, vectors included (9.5 s at 100,000 repos on 3.2).
    public func coverage() async throws -> [String: Int] {
        var models: [String] = []
        while let next = try await client.query(
            "SELECT VALUE embedding_model FROM \(table) WHERE embedding_model > $after ORDER BY embedding_model LIMIT 1",
            ["after": .string(models.last ?? "")]
        ).last?.array?.first?.string, !models.contains(next) {
            models.append(next)
        }
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
        if let model = filter.model {
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
            let score: Double
            switch row["score"] {
            case .double(let value): score = value
            case .int(let value): score = Double(value)
            default: score = 0
            }
            return SearchHit(repo: repo, score: score)
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
    public func scan(model: String, after: String?, limit: Int) async throws -> ScanPage {
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
        let ids = records.compactMap { $0["id"]?.recordID }.map { SurrealValue.recordID(RecordID(table: queue, id: $0.id)) }
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
            guard case .success(let repo) = Repo.decode(record.json, fallbackName: id.description) else {
                unreadable += 1
                continue
            }
            let entry = entries[RecordID(table: queue, id: id.id)]
            let embeddingModel = record["embedding_model"]?.string
            let state: StoredRepo.State = entry?["failed"]?.bool == true ? .failed
                : entry == nil && embeddingModel == model ? .embedded : .pending
            var generatedAt: Date?, queuedAt: Date?
            if case .datetime(let value) = record["embedding_generated_at"] { generatedAt = value.date }
            if case .datetime(let value) = entry?["queued_at"] { queuedAt = value.date }
            repos.append(StoredRepo(repo: repo, state: state, embedding: record["embedding"]?.floatArray, embeddingModel: embeddingModel,
                                    embeddingHash: record["embedding_hash"]?.string, embeddingGeneratedAt: generatedAt,
                                    attempts: Int(entry?["attempts"]?.int ?? 0),
                                    lastError: entry == nil ? nil : entry?["last_error"]?.string ?? record["embedding_error"]?.string,
                                    pendingSince: state == .pending ? queuedAt : nil))
        }
        return ScanPage(repos: repos, next: records.count < limit ? nil : last, unreadable: unreadable)
    }

    public func health() async -> ComponentHealth {
        let started = ContinuousClock.now
        do {
            try await client.ping()
            return ComponentHealth(status: .up, latency: ContinuousClock.now - started)
        } catch {
            return ComponentHealth(status: .down, detail: "\(error)", latency: ContinuousClock.now - started)
        }
    }

    public func shutdown() async {
        await client.close()
    }
}

extension SurrealValue {
    /// JSON as SurrealDB values (null becomes NONE: the field is left out).
    public init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .array(let items): self = .array(items.map(SurrealValue.init(json:)))
        case .object(let fields): self = .object(fields.mapValues(SurrealValue.init(json:)))
        }
    }

    /// The value as JSON, for reading records leniently: record ids become `table:key`,
    /// datetimes ISO 8601 text.
    var json: JSONValue {
        switch self {
        case .none, .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .string(value)
        case .bytes: return .null
        case .array(let items): return .array(items.map(\.json))
        case .object(let fields): return .object(fields.mapValues(\.json))
        case .floats(let values): return .array(values.map { .double(Double($0)) })
        case .table(let name): return .string(name)
        case .recordID(let id): return .string(id.plainDescription)
        case .uuid(let uuid): return .string(uuid.uuidString.lowercased())
        case .decimal(let text): return Double(text).map(JSONValue.double) ?? .string(text)
        case .datetime(let time): return .string(time.date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        case .duration(let duration): return .int(Int64(duration.seconds))
        case .tagged(_, let inner): return inner.json
        }
    }
}

/// One claim at a time, in arrival order (`SurrealDialect.claimsOneAtATime`).
actor ClaimLine {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
