import EmbedStarCore
import Foundation
import SurrealClient

/// How the queue is kept whole when the events cannot do it alone: repos written before the
/// events existed (a database a collector filled before the first start), a model change, or a
/// start that was killed half-way.
///
/// - Which model is served: every claim records its owner in `embed_star_instance` (at most every
///   few seconds), and so do its lease renewals. The model of the most recently started owner
///   seen within the request's `liveness` is the database's model; an owner on another model
///   claims nothing. When the queue says another model while this one is served (a canary of
///   another model was rolled back), the owner announces its model again.
/// - When that model differs from the one the queue was filled for (`embed_star_meta:queue`),
///   the owner announces it, and a sweep over the repo table starts (`embed_star_meta:sweep`):
///   chunk by chunk, in record-id order, each chunk one transaction that queues the chunk's repos
///   without a vector of the model and moves the cursor. A killed start resumes at the cursor;
///   instances sweeping at once only repeat idempotent chunks.
/// - At every start the counts are checked against each other (repos, vectors of the model,
///   queue entries): a repo that is neither embedded nor queued starts a sweep that adds what is
///   missing.
/// - A sweep after a model change also gives every entry it meets a new revision, so a write of
///   the old model's vector that was in flight is refused (or, if it landed first, the repo is
///   queued again because it holds the old model's vector).
struct QueueState: Sendable {
    /// When this process last recorded itself, and the model the database served then.
    var heartbeat: (at: ContinuousClock.Instant, model: String, served: String?)?
    /// The model this process announced or found announced.
    var announced: String?
    /// The counts were checked since this process started (for this model).
    var verified: String?
    /// The sweep for this model is known to be finished.
    var swept: String?
    /// A task of this process runs a sweep chunk.
    var sweeping = false
    /// Where the last chunk this process ran left the sweep's cursor, and for which model: the
    /// next chunk reads on from there as a record range (``SurrealDialect/sweepsByRange``).
    var sweepCursor: (model: String, cursor: SurrealValue)?
    /// The model that superseded this one, once logged.
    var supersededBy: String?
    /// The repo count was checked against the table (once per process: a full count on 2.x).
    var recounted = false
    /// When a renewal last marked this process's owner as running.
    var seenMarked: ContinuousClock.Instant?
}

/// What the database holds, read in one request and never written.
struct QueueCounts {
    var total: Int
    /// Repos whose vector (and model field) is from the model.
    var current: Int
    /// Queue entries whose repo held a vector of the model when queued (changed since, or failed).
    var currentQueued: Int
    var queued: Int
    var failed: Int
    var leased: Int

    var embedded: Int { max(0, current - currentQueued) }
    /// Repos neither embedded nor queued: a sweep must add them.
    var unqueued: Int { max(0, total - embedded - queued) }

    var stats: StoreStats {
        StoreStats(total: total, embedded: embedded, pending: max(0, total - embedded - failed), failed: failed, leased: leased)
    }
}

extension SurrealStore {
    static let sweepChunk = 2_000
    static let heartbeatEvery: Duration = .seconds(5)

    /// Records this owner as running, announces its model when it is the newest, and checks the
    /// queue; false when another model is served (the claim hands out nothing).
    func reconcile(_ request: ClaimRequest) async throws -> Bool {
        let now = ContinuousClock.now
        let cached = queueState.withLock { state -> String?? in
            guard let beat = state.heartbeat, beat.model == request.modelIdentity, now - beat.at < min(Self.heartbeatEvery, request.liveness / 4) else { return nil }
            return .some(beat.served)
        }
        let served: String?
        var queued: String?? = nil
        if let cached {
            served = cached
        } else {
            let record = try await dialect().recordFunction
            let answer = try await retryingConflicts {
                try await self.client.query("""
                    UPSERT \(record)('embed_star_instance', $owner) SET
                        started_at = IF model = $model AND started_at != NONE { started_at } ELSE { time::now() },
                        model = $model, seen_at = time::now() RETURN NONE;
                    DELETE embed_star_instance WHERE seen_at < time::now() - $retention;
                    RETURN [(SELECT model, started_at, id FROM embed_star_instance WHERE seen_at > time::now() - $live
                        ORDER BY started_at DESC, id DESC LIMIT 1)[0].model, (SELECT VALUE model FROM ONLY embed_star_meta:queue),
                        (SELECT model, finished FROM ONLY embed_star_meta:sweep)];
                    """, ["owner": .string(request.owner), "model": .string(request.modelIdentity), "live": .duration(SurrealDuration(request.liveness)),
                                   "retention": .duration(SurrealDuration(ClaimRequest.ownerRetention))])
            }
            let found = answer.last?.array ?? []
            served = found.first?.string
            queued = .some(found.count > 1 ? found[1].string : nil)
            let sweep = found.count > 2 ? found[2] : .none
            queueState.withLock { state in
                state.heartbeat = (now, request.modelIdentity, served)
                // A sweep for this model that is on record as unfinished is this process's to
                // help with, whatever it swept before (another instance announced the model
                // again after a rollback and may have stopped half-way).
                if sweep["model"]?.string == request.modelIdentity, sweep["finished"]?.bool == false, state.swept == request.modelIdentity {
                    state.swept = nil
                }
            }
        }
        guard served == nil || served == request.modelIdentity else {
            let first = queueState.withLock { state -> Bool in
                defer { state.supersededBy = served }
                return state.supersededBy != served
            }
            if first {
                logger.warning("another model is served on this database: this instance claims nothing until it stops", metadata: [
                    "model": "\(request.modelIdentity)", "served": "\(served ?? "")",
                ])
            }
            return false
        }
        queueState.withLock { $0.supersededBy = nil }
        // Announced again whenever the queue says another model while this one is served: a
        // canary of another model that was rolled back announced its own, and the instances
        // that outlive it must take the queue back (what this process announced before proves
        // nothing about what the database holds now).
        if let queued, queued != request.modelIdentity {
            try await announce(model: request.modelIdentity, owner: request.owner)
        } else if queued == nil, queueState.withLock({ $0.announced }) != request.modelIdentity {
            try await announce(model: request.modelIdentity, owner: request.owner)
        }
        if queueState.withLock({ $0.verified }) != request.modelIdentity {
            try await verify(model: request.modelIdentity)
        }
        return true
    }

    /// Makes `model` the one the queue is filled for; a change starts a sweep that re-queues
    /// every repo without its vector.
    private func announce(model: String, owner: String) async throws {
        let answer = try await retryingConflicts {
            try await self.client.query("""
                BEGIN TRANSACTION;
                LET $known = (SELECT VALUE model FROM ONLY embed_star_meta:queue);
                IF $known != $model {
                    UPSERT embed_star_meta:queue SET model = $model, changed_at = time::now(), by = $owner;
                    UPSERT embed_star_meta:sweep CONTENT { model: $model, bump: $known != NONE, cursor: NONE, finished: false,
                        swept: 0, queued: 0, started_at: time::now() };
                };
                COMMIT TRANSACTION;
                RETURN $known;
                """, ["model": .string(model), "owner": .string(owner)])
        }
        let known = answer.last?.string
        if known != model {
            logger.notice("the queue now serves this model; repos without its vector are being queued", metadata: [
                "model": "\(model)", "previous": "\(known ?? "none")",
            ])
        }
        queueState.withLock { state in
            state.announced = model
            if known != model {
                // The sweep this announcement started must run here too, whatever this process
                // swept or checked for the model before (a rollback announces a model again).
                state.swept = nil
                state.verified = nil
                state.sweepCursor = nil
            }
        }
    }

    /// The check at every start: a repo neither embedded nor queued restarts the sweep. With
    /// `confirm`, the counts must say so twice, a second apart (a write-back of another instance
    /// between two of the counts' reads can make one reading look short). Answers whether the
    /// sweep was restarted.
    @discardableResult
    func verify(model: String, confirm: Bool = false) async throws -> Bool {
        if !confirm, !queueState.withLock({ $0.recounted }) {
            try await recount()
            queueState.withLock { $0.recounted = true }
        }
        var counts = try await queueCounts(model: model)
        if confirm, counts.unqueued > 0 {
            try await Task.sleep(for: .seconds(1))
            counts = try await queueCounts(model: model)
        }
        if counts.unqueued > 0, queueState.withLock({ $0.recounted }) {
            // The repo count may have drifted since the start's check (a write the engine lost):
            // set it right before restarting a sweep on its word.
            try await recount()
            counts = try await queueCounts(model: model)
        }
        let restarted = counts.unqueued > 0
        if restarted {
            let answer = try await retryingConflicts {
                try await self.client.query("""
                    BEGIN TRANSACTION;
                    LET $s = (SELECT * FROM ONLY embed_star_meta:sweep);
                    IF $s.model != $model OR $s.finished != false {
                        UPSERT embed_star_meta:sweep CONTENT { model: $model, bump: false, cursor: NONE, finished: false,
                            swept: 0, queued: 0, started_at: time::now() };
                    };
                    COMMIT TRANSACTION;
                    RETURN $s.model = $model AND $s.finished = false;
                    """, ["model": .string(model)])
            }
            logger.notice("repos that are neither embedded nor queued were found; queueing them", metadata: [
                "missing": "\(counts.unqueued)", "total": "\(counts.total)", "resumed": "\(answer.last?.bool ?? false)",
            ])
        }
        queueState.withLock { state in
            state.verified = model
            if restarted, state.swept == model { state.swept = nil }
        }
        return restarted
    }

    /// The repo count the events keep, checked against the table once per process and set right:
    /// a repo the collector created while migration 2 counted the table (or a count an engine
    /// lost with one of two concurrent writes) would otherwise be off for good. One count of
    /// the table (from the count index on 3.x) and the 16 shards, compared and corrected in one
    /// transaction.
    func recount() async throws {
        let answer = try await retryingConflicts {
            try await self.client.query("""
                BEGIN TRANSACTION;
                LET $table = (SELECT count() FROM \(self.table) GROUP ALL)[0].count ?? 0;
                LET $kept = math::sum(SELECT VALUE n FROM embed_star_count) ?? 0;
                IF $table != $kept { UPSERT embed_star_count:0 SET n = (n ?? 0) + $table - $kept RETURN NONE; };
                RETURN [$table, $kept];
                COMMIT TRANSACTION;
                """)
        }
        let found = answer.last { $0.array != nil }?.array ?? []
        if found.count == 2, let table = found[0].int, let kept = found[1].int, table != kept {
            logger.notice("the repo count was off and is set right", metadata: ["counted": "\(kept)", "repos": "\(table)"])
        }
    }

    /// Runs one chunk of the sweep if one is due, no other task of this process runs one and no
    /// other instance holds the sweep; returns whether the sweep is unfinished (more to go).
    func sweepChunk(model: String, owner: String) async throws -> Bool {
        let mine = queueState.withLock { state -> Bool? in
            if state.swept == model { return nil }
            if state.sweeping { return false }
            state.sweeping = true
            return true
        }
        guard let mine else { return false }
        guard mine else { return true }
        defer { queueState.withLock { $0.sweeping = false } }
        let dialect = try await dialect()
        let sql = Self.sweepSQL(table: configuration.table, dialect: dialect)
        var variables: [String: SurrealValue] = [
            "model": .string(model), "n": .int(Int64(Self.sweepChunk)), "owner": .string(owner),
            "hold": .duration(SurrealDuration(Self.sweepHold)),
        ]
        if dialect.sweepsByRange {
            // The chunk after the cursor this process last saw; when another instance moved the
            // cursor since (or this process never saw it), the statement compares ids instead.
            let expected = queueState.withLock { $0.sweepCursor.flatMap { $0.model == model ? $0.cursor : nil } }
            variables["expected"] = expected ?? .none
            variables["range"] = Self.range(of: configuration.table, after: expected)
        }
        let answer = try await retryingConflicts { try await self.client.query(sql, variables) }
        let sweep = answer.last?["sweep"] ?? .none
        if let cursor = sweep["cursor"], !cursor.isAbsent, sweep["model"]?.string == model {
            queueState.withLock { $0.sweepCursor = (model, cursor) }
        }
        guard !sweep.isAbsent, sweep["model"]?.string == model, sweep["finished"]?.bool == false else {
            // Finished, or no sweep for this model is on record: nothing to do.
            if !sweep.isAbsent, sweep["model"]?.string == model, answer.last?["due"]?.bool == true {
                logger.info("sweep finished: every repo without a vector of the model is queued", metadata: [
                    "model": "\(model)", "swept": "\(sweep["swept"]?.int ?? 0)", "queued": "\(sweep["queued"]?.int ?? 0)",
                ])
            }
            queueState.withLock { $0.swept = model }
            return false
        }
        if answer.last?["due"]?.bool == true {
            logger.debug("sweep chunk", metadata: ["swept": "\(sweep["swept"]?.int ?? 0)", "queued": "\(sweep["queued"]?.int ?? 0)"])
        }
        return true
    }

    /// The records of `table` after the record id `cursor` (all of them when nil), as a record
    /// range value: a record id whose key is a range (CBOR tag 49 of an excluded bound, tag 51,
    /// and an open end).
    static func range(of table: String, after cursor: SurrealValue?) -> SurrealValue {
        let start: SurrealValue = if case .recordID(let id) = cursor { .tagged(51, id.id) } else { .null }
        return .recordID(RecordID(table: table, id: .tagged(49, .array([start, .null]))))
    }

    /// How long a sweeping instance keeps the sweep to itself after a chunk (others take over
    /// when it stops for longer).
    static let sweepHold: Duration = .seconds(30)

    /// One chunk: the next `$n` repos after the cursor; those without a vector of `$model` get a
    /// queue entry (after a model change, every entry met gets a new revision, so a write of the
    /// old model's vector is refused, and loses its lease, so the new model's instances claim it
    /// at once instead of after the old lease ran out, and the old holder can neither renew nor
    /// release it; an entry leased for `$model` itself keeps its revision and lease: that
    /// claim's write is the one wanted), and those with
    /// one lose an entry that only another model's sweep made (stale); the cursor moves,
    /// all in one transaction. One instance sweeps at a time (`sweeper`, held for `$hold` after
    /// each chunk): instances sweeping the same chunk would only conflict and repeat it.
    /// Answers whether a chunk ran and the sweep record.
    static func sweepSQL(table: String, dialect: SurrealDialect) -> String {
        let queue = Migrations.queue, epoch = Migrations.epoch, record = dialect.recordFunction
        // SurrealDB 3 gives a block's one-element array as the element: `array::flatten([...])`
        // makes every selection an array again. Closures see only their parameter (2.x does not
        // pass them the statement's variables), so what they test is selected beforehand.
        // The cursor is a variable of its own: compared with `$s.cursor`, SurrealDB 3 reads and
        // decodes every record before the cursor (each chunk slower than the last: a sweep over
        // 100,000 repos took 282 s, against 0.36 s a chunk at the end with `$cursor`).
        return """
            BEGIN TRANSACTION;
            LET $s = (SELECT * FROM ONLY embed_star_meta:sweep);
            LET $free = $s.sweeper = NONE OR $s.sweeper = $owner OR $s.sweeper_until < time::now();
            LET $due = $s != NONE AND $s.model = $model AND $s.finished = false AND $free;
            LET $cursor = $s.cursor;
            LET $ids = array::flatten([IF !$due { [] }\(dialect.sweepsByRange ? " ELSE IF $cursor = $expected { (SELECT VALUE id FROM $range LIMIT $n) }" : "")
                ELSE IF $cursor = NONE { (SELECT VALUE id FROM \(table) ORDER BY id LIMIT $n) }
                ELSE { (SELECT VALUE id FROM \(table) WHERE id > $cursor ORDER BY id LIMIT $n) }]);
            LET $all = array::flatten([IF array::len($ids) = 0 { [] } ELSE {
                (SELECT id, embedding_model, embedding != NONE AS held, embedding != NONE AND embedding_model = $model AS current FROM $ids) }]);
            LET $todo = $all.filter(|$r| !$r.current);
            LET $current = $all.filter(|$r| $r.current).map(|$r| \(record)('\(queue)', record::id($r.id)));
            IF array::len($current) > 0 { DELETE $current WHERE stale = true RETURN NONE; };
            LET $rows = $todo.map(|$r| {
                id: \(record)('\(queue)', record::id($r.id)), repo: $r.id, stale: $r.held, revision: rand::int(1, 1000000000), failed: false,
                attempts: 0, lease_until: \(epoch), not_before: \(epoch), had: $r.embedding_model, queued_at: time::now() });
            IF $due AND $s.bump = true {
                INSERT INTO \(queue) $rows ON DUPLICATE KEY UPDATE
                    revision += IF lease_model = $model AND lease_until > time::now() { 0 } ELSE { 1 },
                    lease_owner = IF lease_model = $model AND lease_until > time::now() { lease_owner } ELSE { NONE },
                    lease_until = IF lease_model = $model AND lease_until > time::now() { lease_until } ELSE { \(epoch) },
                    stale = stale AND $input.stale, failed = false,
                    attempts = 0, last_error = NONE, not_before = \(epoch), had = $input.had RETURN NONE;
            } ELSE IF array::len($rows) > 0 {
                INSERT IGNORE INTO \(queue) $rows RETURN NONE;
            };
            LET $after = IF !$due { $s } ELSE {
                (UPSERT ONLY embed_star_meta:sweep SET cursor = array::last($ids) ?? cursor, finished = array::len($ids) < $n,
                    swept = (swept ?? 0) + array::len($ids), queued = (queued ?? 0) + array::len($todo), finished_at = time::now(),
                    sweeper = $owner, sweeper_until = time::now() + $hold) };
            COMMIT TRANSACTION;
            RETURN { due: $due, sweep: $after };
            """
    }

    /// The counts `stats` reports and the start-up check compares, read from the repo table's
    /// model index, the queue and the repo counter (one request, no writes).
    func queueCounts(model: String) async throws -> QueueCounts {
        let results = try await client.query("""
            RETURN [
                math::sum(SELECT VALUE n FROM embed_star_count),
                \(Self.count(configuration.table, where: "embedding_model", is: model, parameter: "$model")),
                \(Self.count(Migrations.queue, where: "had", is: model, parameter: "$model")),
                (SELECT count() FROM \(Migrations.queue) GROUP ALL)[0].count,
                \(Self.failedCount),
                (SELECT count() FROM \(Migrations.queue) WHERE failed = false AND lease_until > time::now() GROUP ALL)[0].count
            ];
            """, ["model": .string(model)])
        let values = (results.last?.array ?? []).map { Int($0.int ?? 0) }
        guard values.count == 6 else { throw SurrealError(.protocolViolation, "the counts came back incomplete") }
        return QueueCounts(total: values[0], current: values[1], currentQueued: values[2], queued: values[3], failed: values[4], leased: values[5])
    }

    /// The failed queue entries, counted from the index on `failed` (what `stats` and the index
    /// check read).
    static let failedCount = "(SELECT count() FROM \(Migrations.queue) WHERE failed = true GROUP ALL)[0].count"

    /// The records of `table` whose `field` is `value`, counted from the field's index: the value
    /// is written into the statement where it can be (see `SurrealDialect.literal`), else it is
    /// read from `parameter`, which the caller binds.
    static func count(_ table: String, where field: String, is value: String, parameter: String) -> String {
        "(\(countSelect(table, where: field, is: value, parameter: parameter)))[0].count"
    }

    /// The statement `count` reads its number from (apart, so a test can ask the engine's plan).
    static func countSelect(_ table: String, where field: String, is value: String, parameter: String) -> String {
        "SELECT count() FROM \(table) WHERE \(field) = \(SurrealDialect.literal(value) ?? parameter) GROUP ALL"
    }

    /// On a server that can lose one of two concurrent writes of a record (the lost-write guards are on), a claim that
    /// found nothing looks for what such a loss leaves behind: an entry its index lost
    /// (``repairQueueIndexes(_:)``), and, every `queueCountCheckEvery`, an index that counts a
    /// record it should not (``repairCountIndexes(model:)``, when due) and a repo neither
    /// embedded nor queued (the start's check again: an old model's write-back and the new
    /// model's sweep of the same entry both committed, the delete last, so the repo keeps the old
    /// model's vector with no entry). Answers whether the caller should claim again.
    func recheckQueue(_ request: ClaimRequest) async throws -> Bool {
        let dialect = try await dialect()
        guard dialect.indexesCanMissRecords else { return false }
        if try await repairQueueIndexes(request) { return true }
        guard Self.due(queueCountsCheckedAt, every: queueCountsCheckEvery.withLock { $0 }) else { return false }
        if dialect.indexesCanCountStaleKeys { await checkCountIndexes(request) }
        return try await verify(model: request.modelIdentity, confirm: true)
    }

    /// The count indexes' check takes at most a fiftieth of the time of the database, whatever
    /// the number of instances: at 100,000 repos of 384 dimensions on 2.3.10 it reads the
    /// records in about 2.4 s, so one instance of the fleet runs it every two minutes or so
    /// (the next idle count check after its turn came).
    static let countIndexCheckShare = 50

    /// ``repairCountIndexes(model:)`` when the fleet's turn for it has come (kept in
    /// `embed_star_meta:count_check`: when the next check is due, and how long the last one took):
    /// the instance that takes the turn holds it for `countIndexCheckHold`, and when done sets the
    /// next turn `countIndexCheckShare` times what the check took from its start (a minute at
    /// least). A check that fails is logged and waits for its turn like one that succeeded; it does
    /// not stop the count check that follows it.
    func checkCountIndexes(_ request: ClaimRequest) async {
        let minimum = queueCountsCheckEvery.withLock { $0 }
        let local = countIndexesNextCheck.withLock { next -> Bool in
            let now = ContinuousClock.now
            if let next, next > now { return false }
            next = now + Self.countIndexCheckHold  // no other task of this process starts one meanwhile
            return true
        }
        guard local else { return }
        let started = ContinuousClock.now
        var ran = false
        do {
            let turn = try await retryingConflicts {
                try await self.client.query("""
                    BEGIN TRANSACTION;
                    LET $c = (SELECT * FROM ONLY embed_star_meta:count_check);
                    LET $mine = $c.next_at = NONE OR $c.next_at <= time::now();
                    IF $mine { UPSERT embed_star_meta:count_check SET next_at = time::now() + $hold, by = $owner RETURN NONE; };
                    COMMIT TRANSACTION;
                    RETURN $mine;
                    """, ["hold": .duration(SurrealDuration(Self.countIndexCheckHold)), "owner": .string(request.owner)])
            }
            if turn.last?.bool == true {
                ran = true
                try await repairCountIndexes(model: request.modelIdentity)
            }
        } catch {
            logger.warning("the check of the count indexes failed; it is tried again at its next turn", metadata: ["error": "\(error)"])
        }
        let took = ContinuousClock.now - started
        let every = max(minimum, took * Self.countIndexCheckShare)
        countIndexesNextCheck.withLock { $0 = started + (ran ? every : minimum) }
        guard ran else { return }
        _ = try? await retryingConflicts {
            try await self.client.query("UPSERT embed_star_meta:count_check SET next_at = time::now() + $every, took = $took, by = $owner RETURN NONE",
                                        ["every": .duration(SurrealDuration(every - took)), "took": .duration(SurrealDuration(took)),
                                         "owner": .string(request.owner)])
        }
    }

    /// How long the instance that took the count check's turn keeps it (another takes it over
    /// when that one stopped half-way).
    static let countIndexCheckHold: Duration = .seconds(600)

    /// The indexes `stats` and `coverage` count from (the model's on the repo table, for every
    /// model the table holds and the served one; `had` and `failed` on the queue), each counted
    /// twice in one request: from the index alone, as `stats` counts, and record by record
    /// without it (the repo table read once, grouped by model). A server that can lose one of
    /// two concurrent writes of a record can also keep an index key of a value the record no
    /// longer holds: in the store simulation on 2.3.10 (seed 3000), a vector write and the
    /// collector's change of the same repo, committed at once, left the model's index counting
    /// one repo too many, and `stats` said one more embedded than the records, for good. An index
    /// whose counts differ is rebuilt and counted again: one that still differs is logged as an
    /// error (a write of another instance during the rebuild can leave the key again on 2.x; the
    /// next check tries again). Answers the indexes rebuilt.
    @discardableResult
    func repairCountIndexes(model: String) async throws -> [String] {
        let table = configuration.table, queue = Migrations.queue
        // The models the index lists, and the served one; a model only the records show (its index
        // keys lost) is added once the table was read, and everything counted again.
        var models = Array(Set(try await storedModels() + [model])).sorted()
        var variables: [String: SurrealValue] = ["model": .string(model)]
        /// Each index's counts, from the index and from the records, by the value counted.
        func counts(of indexes: Set<String>) async throws -> [String: [String: (indexed: Int, records: Int)]] {
            for (index, name) in models.enumerated() { variables["m\(index)"] = .string(name) }
            var parts: [String] = []
            if indexes.contains("embed_star_model") {
                parts.append("[\(models.indices.map { Self.count(table, where: "embedding_model", is: models[$0], parameter: "$m\($0)") + " ?? 0" }.joined(separator: ", "))]")
                parts.append("(SELECT embedding_model, count() AS n FROM \(table) WITH NOINDEX WHERE embedding_model != NONE GROUP BY embedding_model)")
            }
            if indexes.contains("embed_queue_had") {
                parts.append("[\(Self.count(queue, where: "had", is: model, parameter: "$model")) ?? 0, count(SELECT VALUE id FROM \(queue) WITH NOINDEX WHERE had = $model)]")
            }
            if indexes.contains("embed_queue_failed") {
                parts.append("[\(Self.failedCount) ?? 0, count(SELECT VALUE id FROM \(queue) WITH NOINDEX WHERE failed = true)]")
            }
            var values = try await client.query("RETURN [\(parts.joined(separator: ", "))];", variables).last?.array ?? []
            guard values.count == parts.count else { throw SurrealError(.protocolViolation, "the index check answered \(values.count) counts, not \(parts.count)") }
            var found: [String: [String: (indexed: Int, records: Int)]] = [:]
            func pair(_ value: SurrealValue) -> (Int, Int) { (Int(value.array?.first?.int ?? 0), Int(value.array?.last?.int ?? 0)) }
            if indexes.contains("embed_star_model") {
                let indexed = values.removeFirst().array ?? [], grouped = values.removeFirst().array ?? []
                guard indexed.count == models.count else {
                    throw SurrealError(.protocolViolation, "the index check answered \(indexed.count) model counts, not \(models.count)")
                }
                var records: [String: Int] = [:]
                for row in grouped { if let name = row["embedding_model"]?.string { records[name] = Int(row["n"]?.int ?? 0) } }
                for (index, name) in models.enumerated() {
                    found["embed_star_model", default: [:]][name] = (Int(indexed[index].int ?? 0), records[name] ?? 0)
                }
                for name in records.keys where !models.contains(name) {
                    found["embed_star_model", default: [:]][name] = (-1, records[name] ?? 0)  // not counted from the index yet
                }
            }
            if indexes.contains("embed_queue_had") { found["embed_queue_had"] = [model: pair(values.removeFirst())] }
            if indexes.contains("embed_queue_failed") { found["embed_queue_failed"] = ["true": pair(values.removeFirst())] }
            return found
        }
        let tables = ["embed_star_model": table, "embed_queue_had": queue, "embed_queue_failed": queue]
        var found = try await counts(of: Set(tables.keys))
        let unlisted = found["embed_star_model", default: [:]].filter { $0.value.indexed < 0 }.keys
        if !unlisted.isEmpty {
            models = (models + unlisted).sorted()
            found = try await counts(of: Set(tables.keys))
            found["embed_star_model"] = found["embed_star_model"]?.filter { $0.value.indexed >= 0 }  // a model that appeared meanwhile waits for the next check
        }
        var rebuilt: [String] = []
        for (index, byValue) in found.sorted(by: { $0.key < $1.key }) {
            let off = byValue.filter { $0.value.indexed != $0.value.records }
            guard !off.isEmpty else { continue }
            logger.warning("an index counted other records than the table holds (concurrent writes of one record on SurrealDB 2.x); rebuilding it", metadata: [
                "index": "\(index)", "counted": "\(off.mapValues(\.indexed))", "records": "\(off.mapValues(\.records))",
            ])
            _ = try await retryingConflicts { try await self.client.query("REBUILD INDEX IF EXISTS \(index) ON \(tables[index]!)") }
            rebuilt.append(index)
        }
        if !rebuilt.isEmpty {
            for (index, byValue) in try await counts(of: Set(rebuilt)) {
                let off = byValue.filter { $0.value.indexed >= 0 && $0.value.indexed != $0.value.records }
                guard !off.isEmpty else { continue }
                logger.error("an index still counts other records than the table holds after it was rebuilt; the next check tries again", metadata: [
                    "index": "\(index)", "counted": "\(off.mapValues(\.indexed))", "records": "\(off.mapValues(\.records))",
                ])
            }
        }
        return rebuilt
    }

    /// How often an idle instance on such a server reads the counts (one `stats`: about 200 ms of
    /// the engine at 100,000 repos on 2.3.10).
    static let queueCountCheckEvery: Duration = .seconds(60)

    /// How often a claim that found nothing checks the queue's indexes against the table. The
    /// check reads the queue without an index up to its first claimable entry (a few ms for
    /// thousands of entries that are leased, failed or waiting); an entry the index lost waits
    /// for it, after the lease a lost write left on it has run out.
    static let queueIndexCheckEvery: Duration = .seconds(10)

    /// On a claim that found nothing, on a server whose indexes can miss records (the guards are on), at most
    /// every `queueIndexCheckEvery`: an entry the table holds as claimable (read without an index)
    /// while the claim index lists none means the index lost entries; the queue's indexes are
    /// rebuilt and the answer is true (the caller claims again). The stale kind is looked at only
    /// when the claim may take stale entries, so a stale limit of 0 is not taken for a lost entry.
    func repairQueueIndexes(_ request: ClaimRequest) async throws -> Bool {
        let dialect = try await dialect()
        guard Self.due(queueIndexesCheckedAt, every: Self.queueIndexCheckEvery) else { return false }
        let queue = Migrations.queue
        let claimable = "failed = false AND lease_until < $now AND not_before <= $now"
        let answer = try await client.query("""
            LET $now = time::now();
            LET $kinds = IF $stale { [false, true] } ELSE { [false] };
            RETURN [
                (SELECT id, lease_owner, lease_model FROM \(queue) WITH NOINDEX WHERE stale INSIDE $kinds AND \(claimable) LIMIT 1)[0],
                (SELECT VALUE id FROM \(queue) WITH INDEX embed_queue_claim WHERE stale = false AND \(claimable) LIMIT 1)[0],
                IF $stale { (SELECT VALUE id FROM \(queue) WITH INDEX embed_queue_claim WHERE stale = true AND \(claimable) LIMIT 1)[0] } ELSE { NONE }
            ];
            """, ["stale": .bool((request.staleLimit ?? request.limit) > 0)])
        guard let found = answer.last?.array, found.count == 3, !found[0].isAbsent, found[1].isAbsent, found[2].isAbsent else { return false }
        logger.warning("the queue's indexes missed claimable entries (SurrealDB 2.x after concurrent writes of one record); rebuilding them", metadata: [
            "server": "\(dialect)", "entry": "\(found[0]["id"] ?? .none)",
            "last_lease_owner": "\(found[0]["lease_owner"]?.string ?? "none")", "last_lease_model": "\(found[0]["lease_model"]?.string ?? "none")",
        ])
        _ = try await retryingConflicts {
            try await self.client.query("""
                REBUILD INDEX IF EXISTS embed_queue_claim ON \(queue);
                REBUILD INDEX IF EXISTS embed_queue_failed ON \(queue);
                REBUILD INDEX IF EXISTS embed_queue_had ON \(queue);
                """)
        }
        return true
    }
}
