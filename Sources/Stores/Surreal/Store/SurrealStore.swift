import EmbedStarConfig
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
    let preparedDialect = Mutex<SurrealDialect?>(nil)
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
    /// When an idle claim last read the queue's counts (``recheckQueue(_:)``); the start's own
    /// check counts as the first.
    let queueCountsCheckedAt = Mutex<ContinuousClock.Instant?>(ContinuousClock.now)
    /// How often that is (``queueCountCheckEvery``; a test shortens it).
    let queueCountsCheckEvery = Mutex<Duration>(SurrealStore.queueCountCheckEvery)
    /// When this process next asks for the fleet's turn to check the indexes `stats` counts from
    /// against the records (``checkCountIndexes(_:)``; nil: at the next idle check of the counts).
    let countIndexesNextCheck = Mutex<ContinuousClock.Instant?>(nil)
    /// Tests only: how long a claim waits, inside its transaction, between reading the model the
    /// queue serves and taking the leases, when it read that its model is served (nil, the
    /// default: it does not). A test runs another instance's model change in that gap; a claim
    /// that read another model does not wait, so the test sees that the race did not happen.
    let claimPause = Mutex<Duration?>(nil)

    /// Whether `every` has passed since `last` was set (or it never was); if so, `last` is now.
    static func due(_ last: borrowing Mutex<ContinuousClock.Instant?>, every: Duration) -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let last, now - last < every { return false }
            last = now
            return true
        }
    }
    /// The task keeping the words of lexical search (``startKeepingWords()``).
    let wordsTask = Mutex<Task<Void, Never>?>(nil)
    /// Where this process's last words chunk ended (the next reads on from there as a record range on 2.x).
    let wordsCursor = Mutex<SurrealValue?>(nil)
    /// Both indexes of the words (full-text on 3.x, of the terms on 2.x) are built: this process defined them (``keepWords()``) or found them ready (``wordsIndexReady()``).
    let wordsReady = Mutex(false)
    /// When the keeper last looked whether the built indexes still exist (``keepWords()``).
    let wordsIndexCheckedAt = Mutex<ContinuousClock.Instant?>(nil)
    /// Whether vector writes run in import mode, and when that was last checked (``QuietWriteState``).
    let quietWrites = Mutex<QuietWriteState?>(nil)
    var table: String { configuration.table }
    var queue: String { Migrations.queue }

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
        let dialect = try SurrealDialect(serverVersion: try await client.version(), guarded: configuration.lostWriteGuards)
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
        // The words of lexical search: a first step now (a database of up to 2,000 repos has
        // them all, and its indexes defined, when prepare returns), the rest in a task.
        do {
            _ = try await keepWords()
        } catch {
            logger.warning("keeping the words of lexical search failed; the store's task tries again", metadata: ["error": "\(error)"])
        }
        startKeepingWords()
    }

    /// Applies the migrations up to `version` only (tests make a database of an older version).
    func prepare(through version: Int) async throws {
        let dialect = try await dialect()
        try await retryingConflicts { try await migrate(dialect, through: version) }
    }

    private func migrate(_ dialect: SurrealDialect, through last: Int = Migrations.newest) async throws {
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
        var changedCounts = false
        for migration in migrations.all where !applied.contains(Int64(migration.version)) && migration.version <= last {
            changedCounts = changedCounts || (migration.version >= 2 && migration.recounts)
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
        if last >= Migrations.newest { try await followConfiguration(migrations) }
        if changedCounts {
            // A repo the collector created while a migration (re)defined the counting events can
            // be missed by both the migration's count and the events (the engine lets both
            // commit): count again now that the events are in place. The first claim counts once
            // more, for a create that straddled this one.
            try await recount()
        }
    }

    /// A database set up for another table than the configured one.
    static func otherTable(_ recorded: String, configured: String) -> ConfigError {
        ConfigError(location: nil, path: "stores.surreal.table", message:
            "this database's queue serves table '\(recorded)', not '\(configured)': one database serves one table "
                + "(point embed-star at the database that holds '\(configured)', or set table back to '\(recorded)')")
    }

    /// The repo event follows the configuration: a database is set up for one table (another
    /// table is refused, saying what to do), and a change of `watched_fields` redefines the
    /// event (repos whose newly watched fields changed before are not queued by it).
    private func followConfiguration(_ migrations: Migrations) async throws {
        let recorded = try await client.query("SELECT * FROM ONLY embed_star_meta:schema").last ?? .none
        if let table = recorded["table"]?.string, table != configuration.table {
            throw Self.otherTable(table, configured: configuration.table)
        }
        let watched = recorded["watched_fields"]?.array?.compactMap(\.string)
        // Also an event older than this binary's (a lost write of migration 8's, a restore).
        let older = (recorded["event_version"]?.int).map { $0 < migrations.eventVersion } ?? false
        guard watched.map(Set.init) != Set(configuration.watchedFields) || older else { return }
        if let version = recorded["event_version"]?.int, version > migrations.eventVersion {
            logger.warning("the repo event was written by a newer embed-star; its watched fields are kept", metadata: [
                "watched_fields": "\(watched?.joined(separator: ",") ?? "")", "configured": "\(configuration.watchedFields.joined(separator: ","))",
            ])
            return
        }
        _ = try await client.query("BEGIN TRANSACTION;\n\(migrations.repoEvent);\n\(migrations.schemaRecord);\nCOMMIT TRANSACTION;")
        logger.notice("the repo event now watches the configured fields", metadata: [
            "watched_fields": "\(configuration.watchedFields.joined(separator: ","))",
            "before": "\(watched?.joined(separator: ",") ?? "unrecorded")",
        ])
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
                try await Task.sleep(for: RetryPolicy.halfJitter(step: attempt, base: .milliseconds(10), cap: .milliseconds(640)))
            }
        }
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
        let keeping = wordsTask.withLock { task in
            defer { task = nil }
            task?.cancel()
            return task
        }
        // Not waited for: a step may be building the indexes (minutes on 2.x); its transaction
        // ends with the connection, and the next keeper defines them again.
        if keeping != nil { await releaseWords() }
        await client.close()
    }
}
