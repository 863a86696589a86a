/// The store's schema, as numbered migrations recorded in `embed_star_migration`.
///
/// Every statement is idempotent (`IF NOT EXISTS`, `OVERWRITE`, upserts), so two instances
/// starting at once may both run a migration: the second finds its record already there and
/// carries on. Migrations only ever add: an older instance keeps working after a newer one
/// migrated, as it only needs the versions it knows.
struct Migrations {
    struct Migration {
        var version: Int
        var summary: String
        var statements: [String]
        /// Statements older servers do not understand; their failure is logged, not fatal.
        var optional: [String] = []
        /// It (re)defines what keeps the repo count (events), so the count is taken again after it.
        var recounts = true
    }

    let table: String
    let watchedFields: [String]
    let dialect: SurrealDialect
    /// What the database held before these migrations ran.
    var found = FoundSchema()

    /// The parts of the repo table's schema that decide what a migration may change.
    struct FoundSchema: Equatable {
        /// The collector's table is `SCHEMAFULL`: every field embed-star writes must be defined.
        var schemafull = false
        /// The vector field is typed as migration 1 typed it (`option<array<number>>`, with
        /// nothing else a collector might have added).
        var typedVectorIsOurs = false

        /// Reads `INFO FOR DB` and `INFO FOR TABLE` answers.
        init(tableDefinition: String? = nil, vectorDefinition: String? = nil) {
            schemafull = tableDefinition?.contains("SCHEMAFULL") ?? false
            typedVectorIsOurs = vectorDefinition.map { definition in
                Self.ourVectorTypes.contains { definition.hasSuffix(" TYPE \($0) PERMISSIONS FULL") }
            } ?? false
        }

        /// How 2.x and 3.x print the type migration 1 gave the vector field.
        static let ourVectorTypes = ["option<array<number>>", "none | array<number>"]
    }

    static let queue = "embed_queue"
    /// The newest migration this binary knows (what ``SurrealStore/openForReading()`` requires).
    static let newest = 10
    static let epoch = "d'1970-01-01T00:00:00Z'"

    /// Makes a repo pending: a new revision, not failed, claimable now (a live lease stays: its
    /// holder's write will see the new revision and be refused). `stale`: queued because another
    /// model made its vector (the caller only passes repos that have one); such entries are
    /// claimed after the others, at a pace. An entry already queued for a change stays not stale.
    /// A new entry starts at a random revision: an entry deleted by a write and made again by a
    /// change must not repeat a revision a stale claim still carries.
    /// `queued_at` is when the entry was made (an entry already queued keeps it): the age of the
    /// backlog. `had` keeps the model of the vector the repo held when queued (embed-star's own writes are
    /// the only ones that change it, and they delete the entry), so counts need not read repos.
    static func enqueue(_ id: String, had: String, stale: Bool = false, dialect: SurrealDialect) -> String {
        let staleness = stale ? "stale = revision = NONE OR stale = true" : "stale = false"
        return """
        UPSERT \(dialect.recordFunction)("\(queue)", record::id(\(id))) SET \(staleness), repo = \(id), revision = (revision ?? rand::int(0, 1000000000)) + 1, \
        failed = false, attempts = 0, last_error = NONE, lease_until = lease_until ?? \(epoch), not_before = \(epoch), had = \(had), \
        queued_at = queued_at ?? time::now()
        """
    }

    /// The event that queues a created repo or one whose watched fields changed.
    var enqueueEvent: String {
        let watched = watchedFields.joined(separator: ", ")
        return """
            DEFINE EVENT OVERWRITE embed_star_enqueue ON TABLE \(table) \
            WHEN $event = "CREATE" OR ($event = "UPDATE" AND $before.{\(watched)} != $after.{\(watched)}) \
            THEN { \(Self.enqueue("$after.id", had: "$after.embedding_model", dialect: dialect)); }
            """
    }

    /// The one event on the repo table (migrations 5 and 6): a created repo, one whose watched
    /// fields changed, or one whose vector was removed (by an operator: embed-star never
    /// removes one) is queued, a deleted one loses its entry, and both move the repo count. One event,
    /// not one per job: SurrealDB 3 copies the record for each event defined on every write
    /// (measured: within the noise at 384 and 1,536 dims, so this is doing less, not a speed-up).
    ///
    /// Since migration 8 (10 on 2.x) it also notes, in `embed_star_words_change`, a repo created, deleted, or
    /// whose name, owner, full name, description, topics or language changed: embed-star then
    /// rewrites its words (``LexicalWords``). A note is a new record of its own: the
    /// collector's write never meets the full-text index, nor another write's note.
    /// `keepingWords: false` is the event as migration 6 wrote it (a database made at version 6
    /// by a test is what that version made), and as 8 wrote it on 2.x (words since 10 there).
    var repoEvent: String { repoEvent(keepingWords: true) }

    func repoEvent(keepingWords: Bool) -> String {
        let watched = watchedFields.joined(separator: ", ")
        let requeue = "$before.{\(watched)} != $after.{\(watched)} OR ($before.embedding != NONE AND $after.embedding = NONE)"
        let enqueue = Self.enqueue("$after.id", had: "$after.embedding_model", dialect: dialect)
        let reworded = "$before.{\(LexicalWords.sourceFields)} != $after.{\(LexicalWords.sourceFields)}"
        // Since 8 a change of the words alone fires the event too: it queues only when a watched
        // field changed (or the vector was removed).
        let (when, queued, deleted, words) = keepingWords
            ? (" OR \(reworded)", "IF $event = \"CREATE\" OR \(requeue) { \(enqueue); }", " \(LexicalWords.noteChange("$before.id"));",
               " IF $event = \"CREATE\" OR \(reworded) { \(LexicalWords.noteChange("$after.id")); };")
            : ("", enqueue, "", "")
        return """
            DEFINE EVENT OVERWRITE embed_star_repo ON TABLE \(table) \
            WHEN $event != "UPDATE" OR \(requeue)\(when) \
            THEN { IF $event = "DELETE" { \(dequeue); \(count(by: "-"));\(deleted) \
            } ELSE { \(queued); \
            IF $event = "CREATE" { \(count(by: "+")); };\(words) \
            }; }
            """
    }

    /// Removes a deleted repo's queue entry (in an event on the repo table).
    private var dequeue: String { "DELETE \(dialect.recordFunction)(\"\(Self.queue)\", record::id($before.id))" }

    /// Moves the repo count by one (`sign` "+" or "-") in a random one of the 16 counter shards.
    private func count(by sign: String) -> String {
        "UPSERT \(dialect.recordFunction)(\"embed_star_count\", rand::int(0, 15)) SET n = (n ?? 0) \(sign) 1"
    }

    var all: [Migration] {
        [
            Migration(
                version: 1,
                summary: "embedding fields, the pending queue fed by events, counts",
                statements: [
                    "DEFINE TABLE IF NOT EXISTS \(table) SCHEMALESS",
                ] + (found.schemafull ? ["DEFINE FIELD IF NOT EXISTS embedding ON \(table) TYPE option<array<number>>"] : []) + [
                    "DEFINE FIELD IF NOT EXISTS embedding_model ON \(table) TYPE option<string>",
                    "DEFINE FIELD IF NOT EXISTS embedding_hash ON \(table) TYPE option<string>",
                    "DEFINE FIELD IF NOT EXISTS embedding_generated_at ON \(table) TYPE option<datetime>",
                    "DEFINE FIELD IF NOT EXISTS embedding_attempts ON \(table) TYPE option<int>",
                    "DEFINE FIELD IF NOT EXISTS embedding_error ON \(table) TYPE option<string>",
                    "DEFINE TABLE IF NOT EXISTS \(Self.queue) SCHEMALESS",
                    "DEFINE TABLE IF NOT EXISTS embed_star_meta SCHEMALESS",
                    "DEFINE INDEX IF NOT EXISTS embed_queue_failed ON \(Self.queue) FIELDS failed",
                    enqueueEvent,
                    """
                    DEFINE EVENT OVERWRITE embed_star_dequeue ON TABLE \(table) WHEN $event = "DELETE" \
                    THEN { \(dequeue); }
                    """,
                ],
                // Faster counts (SurrealDB 3.x).
                optional: dialect.hasCountIndexes ? ["DEFINE INDEX IF NOT EXISTS embed_star_count ON \(table) COUNT"] : []
            ),
            Migration(
                version: 2,
                summary: "repo count kept by events in 16 counter shards, so stats read 16 records, not the table",
                statements: [
                    "DEFINE TABLE IF NOT EXISTS embed_star_count SCHEMALESS",
                    """
                    DEFINE EVENT OVERWRITE embed_star_count_up ON TABLE \(table) WHEN $event = "CREATE" \
                    THEN { \(count(by: "+")); }
                    """,
                    """
                    DEFINE EVENT OVERWRITE embed_star_count_down ON TABLE \(table) WHEN $event = "DELETE" \
                    THEN { \(count(by: "-")); }
                    """,
                    // In the same transaction as the events: no repo is counted twice or missed.
                    "LET $total = (SELECT count() FROM \(table) GROUP ALL)[0].count ?? 0",
                    "DELETE embed_star_count",
                    "CREATE embed_star_count:0 SET n = $total",
                ]
            ),
            Migration(
                version: 3,
                summary: "counts from indexes (vectors per model, queue entries by the model their repo held), claims by index, instances",
                statements: [
                    "DEFINE INDEX IF NOT EXISTS embed_star_model ON \(table) FIELDS embedding_model",
                    "DEFINE INDEX IF NOT EXISTS embed_queue_claim ON \(Self.queue) FIELDS stale, failed",
                    "DEFINE INDEX IF NOT EXISTS embed_queue_had ON \(Self.queue) FIELDS had",
                    "DEFINE TABLE IF NOT EXISTS embed_star_instance SCHEMALESS",
                    enqueueEvent,
                    "UPDATE \(Self.queue) SET had = repo.embedding_model, stale = stale ?? false RETURN NONE",
                ]
            ),
            Migration(
                version: 4,
                summary: "queue entries record when they were made (queued_at), for the backlog's age",
                statements: [enqueueEvent]
            ),
            Migration(
                version: 5,
                summary: "one event on the repo table instead of four, the vector field untyped on a schemaless table (both cost the engine on every vector written), the claim index ordered by lease (3.x)",
                statements: (dialect.major >= 3 ? [
                    // The claim index ordered by lease: a claim reads the free entries first and
                    // stops at its limit, not every leased entry before them (the backfill's
                    // claims read a quadratic number of entries without it). Same name, so an
                    // older instance's claim uses it too. Not on 2.x: its memory and SurrealKV
                    // storage can lose one of two concurrent writes of a record, and an index
                    // key that moves with every lease would be lost with it.
                    "DEFINE INDEX OVERWRITE embed_queue_claim ON \(Self.queue) FIELDS stale, failed, lease_until",
                ] : []) + [
                    repoEvent(keepingWords: false),
                    "REMOVE EVENT IF EXISTS embed_star_enqueue ON TABLE \(table)",
                    "REMOVE EVENT IF EXISTS embed_star_dequeue ON TABLE \(table)",
                    "REMOVE EVENT IF EXISTS embed_star_count_up ON TABLE \(table)",
                    "REMOVE EVENT IF EXISTS embed_star_count_down ON TABLE \(table)",
                ] + (found.typedVectorIsOurs && !found.schemafull ? [
                    // The engine checked every number of every vector written against the
                    // type (`embedding[*]`): half the write rate at 1,536 dimensions.
                    "REMOVE FIELD IF EXISTS embedding[*] ON TABLE \(table)",
                    "REMOVE FIELD IF EXISTS embedding ON TABLE \(table)",
                ] : [])
            ),
            Migration(
                version: 6,
                summary: "a repo whose vector is removed is queued again; the table and watched fields the event was made for are recorded",
                statements: [repoEvent(keepingWords: false), schemaRecord(eventVersion: 6)]
            ),
            Migration(
                version: 7,
                summary: "the analyzer of lexical search (words split at spaces, punctuation and case changes, lower case, ASCII, English stems)",
                // A migration of its own: 3.x does not see an analyzer defined earlier in the
                // transaction that defines an index with it ("the analyzer does not exist").
                // (On 2.x in migration 10: ``SurrealDialect/wordsMigration``.)
                statements: dialect.wordsMigration == 8 ? [LexicalWords.analyzerDefinition] : []
            ),
            Migration(
                version: 8,
                summary: "lexical search: each repo's words in embed_star_words; the repo event notes what changed, embed-star rewrites those words; the repos stored before are added in chunks after the migration, then the full-text indexes are built",
                statements: dialect.wordsMigration == 8 ? wordsSetUp : [repoEvent(keepingWords: false), schemaRecord(eventVersion: 8)]
            ),
            Migration(
                version: 9,
                summary: "the provider account's rate limits shared by the instances (one record per instance and account), and the batch jobs of backfill --batch-api (SurrealStore+RateLimit, SurrealStore+BatchJobs)",
                statements: [
                    "DEFINE TABLE IF NOT EXISTS \(SurrealStore.rateMembers) SCHEMALESS",
                    "DEFINE INDEX IF NOT EXISTS \(SurrealStore.rateMembers)_account ON \(SurrealStore.rateMembers) FIELDS account",
                    "DEFINE TABLE IF NOT EXISTS \(SurrealStore.batchJobTable) SCHEMALESS",
                ],
                recounts: false
            ),
            Migration(
                version: 10,
                summary: "lexical search on SurrealDB 2.x: each repo's words as terms in embed_star_words, with plain indexes, ranked by embed-star (nothing on 3.x, which has them since 8)",
                // On 2.x it redefines the repo event (its counting too): the count is taken again
                // after it. (A migration with no statements still records its version.)
                statements: dialect.wordsMigration == 10 ? [LexicalWords.analyzerDefinition] + wordsSetUp : [],
                recounts: dialect.wordsMigration == 10
            ),
        ]
    }

    /// The words of lexical search set up (migration 8 on 3.x, 10 on 2.x). The words of the repos
    /// already stored are not written here: in one transaction that takes minutes at 100,000
    /// repos (``SurrealStore/keepWords()`` does it in chunks, and defines the words' indexes
    /// once it is done).
    private var wordsSetUp: [String] {
        ["DEFINE TABLE IF NOT EXISTS \(LexicalWords.table) SCHEMALESS"]
            // (2.x filters by language in embed-star: its planner drops the terms' indexes for a
            // table scan when a condition on another field is added.)
            + (dialect.keepsWordsAsTerms ? [] : ["DEFINE INDEX IF NOT EXISTS \(LexicalWords.table)_language ON \(LexicalWords.table) FIELDS language"])
            + [
                "DEFINE TABLE IF NOT EXISTS \(LexicalWords.changes) SCHEMALESS",
                repoEvent,
                schemaRecord,
                "UPSERT \(LexicalWords.progress) SET finished = false, added = 0, started_at = time::now()",
            ]
    }

    /// Records what the repo event was made for (``SurrealStore`` compares it with the
    /// configuration at every start).
    var schemaRecord: String { schemaRecord(eventVersion: eventVersion) }

    func schemaRecord(eventVersion: Int) -> String {
        "UPSERT embed_star_meta:schema SET table = '\(table)', watched_fields = [\(watchedFields.map { "'\($0)'" }.joined(separator: ", "))], "
            + "event_version = \(eventVersion), changed_at = time::now()"
    }

    /// The version of ``repoEvent`` this binary writes on this engine (the migration that last
    /// changed it there: 8 on 3.x, 10 on 2.x, whose words came with 10): a binary never
    /// redefines an event a newer one wrote.
    var eventVersion: Int { dialect.wordsMigration }

}
