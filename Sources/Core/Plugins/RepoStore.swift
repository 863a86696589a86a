import Foundation

/// Asks a store for pending repos, leased to one owner for a while.
public struct ClaimRequest: Sendable {
    /// The instance taking the lease; a lease held by another owner is never handed out before
    /// it expires.
    public var owner: String
    public var limit: Int
    public var leaseDuration: Duration
    /// The model identity the vectors must come from (``ModelIdentity``: provider, model,
    /// dimensions, prefixes and template, not only the model's name); a repo embedded under
    /// another identity is pending.
    public var modelIdentity: String
    /// At most this many *stale* repos (unchanged, but embedded by another model) in this claim;
    /// nil for no limit. Repos that are new or changed are never held back by it. This is how a
    /// model change is re-embedded at a pace.
    public var staleLimit: Int?
    /// An owner that claimed or renewed a lease within this time counts as running. When owners
    /// with different models share a store, only the model of the most recently started running
    /// owner gets repos (a rolling deploy converges on the newest configuration; when its owners
    /// stop, the next newest takes over once their last claims and renewals are this old, and
    /// takes the queue back).
    public var liveness: Duration

    /// How long a store keeps the record of an owner that stopped claiming: past it, the owner
    /// and its model are forgotten (well past any ``liveness``; one rule for every store).
    public static let ownerRetention: Duration = .seconds(86_400)

    public init(owner: String, limit: Int, leaseDuration: Duration, modelIdentity: String, staleLimit: Int? = nil, liveness: Duration = .seconds(120)) {
        self.owner = owner
        self.limit = limit
        self.leaseDuration = leaseDuration
        self.modelIdentity = modelIdentity
        self.staleLimit = staleLimit
        self.liveness = liveness
    }
}

/// A repo handed out under a lease.
public struct ClaimedRepo: Sendable {
    public var repo: Repo
    /// The store's opaque version of the record at claim time; a write carrying it only
    /// applies if the record has not changed since.
    public var revision: String
    /// The content hash stored with the current vector, if any.
    public var embeddedHash: String?
    /// Failed attempts so far.
    public var attempts: Int
    /// Pending only because its vector came from another model (see ``ClaimRequest/staleLimit``).
    public var stale: Bool
    /// Named by ``RepoStore/requeue(_:)`` since its last vector was written: the pipeline asks
    /// the provider for it, never its cache (a vector that was wrong is not written back).
    public var requeued: Bool

    public init(repo: Repo, revision: String, embeddedHash: String?, attempts: Int, stale: Bool = false, requeued: Bool = false) {
        self.repo = repo
        self.revision = revision
        self.embeddedHash = embeddedHash
        self.attempts = attempts
        self.stale = stale
        self.requeued = requeued
    }
}

/// What to write back for one claimed repo.
public struct RepoWrite: Sendable {
    public enum Change: Sendable {
        /// A new vector for this text and model.
        case embedded(vector: [Float], contentHash: String, generatedAt: Date)
        /// The text and model are what made the stored vector: keep it, mark this revision done.
        case unchanged(contentHash: String)

        public var isEmbedding: Bool {
            if case .embedded = self { return true }
            return false
        }
    }

    public var id: RepoID
    public var revision: String
    /// The ``ModelIdentity`` the vector is stored under.
    public var modelIdentity: String
    public var change: Change

    public init(id: RepoID, revision: String, modelIdentity: String, change: Change) {
        self.id = id
        self.revision = revision
        self.modelIdentity = modelIdentity
        self.change = change
    }
}

/// What became of one write.
public enum WriteOutcome: String, Sendable, Hashable {
    case applied
    /// The record changed after the claim; nothing was written and it stays pending.
    case changedSinceClaim = "changed_since_claim"
    /// The lease expired and another owner holds it now; nothing was written.
    case leaseLost = "lease_lost"
    /// The record is gone.
    case notFound = "not_found"
}

/// A repo that could not be embedded this time.
public struct RepoFailure: Sendable {
    public var id: RepoID
    /// The revision of the claim that failed: a failure counts only against that revision (a
    /// failure of an older text never marks a repo whose text changed since).
    public var revision: String
    /// A short reason for an operator. Never contains a secret.
    public var reason: String
    /// True when trying again cannot help because of what embed-star itself knows: the text
    /// template gives an empty text. The repo is marked failed at once. A provider's rejection
    /// of an input is not permanent: it is isolated from its batch and counted as an attempt
    /// like any failure, failed at `max_attempts` (a provider answers 400 for faults that pass:
    /// a model still loading, a validation it fixed), so a wrong rejection costs a few calls,
    /// not the repo.
    public var permanent: Bool
    /// How long the repo stays out of the queue before it may be claimed again.
    public var retryAfter: Duration

    public init(id: RepoID, revision: String, reason: String, permanent: Bool, retryAfter: Duration) {
        self.id = id
        self.revision = revision
        self.reason = reason
        self.permanent = permanent
        self.retryAfter = retryAfter
    }
}

public enum FailureOutcome: Sendable, Hashable {
    /// Back in the queue after its `retryAfter`, with this many attempts counted.
    case willRetry(attempts: Int)
    /// Out of the queue until `resetFailed`.
    case failed(attempts: Int)
}

public struct StoreStats: Sendable, Hashable, Codable {
    public var total: Int
    /// Repos whose vector is current for the asked model.
    public var embedded: Int
    /// Repos waiting to be embedded (including leased and waiting-to-retry ones).
    public var pending: Int
    public var failed: Int
    /// Pending repos currently under a lease.
    public var leased: Int

    public init(total: Int, embedded: Int, pending: Int, failed: Int, leased: Int) {
        self.total = total
        self.embedded = embedded
        self.pending = pending
        self.failed = failed
        self.leased = leased
    }
}

/// The schema a store's data is at (``RepoStore/openForReading()``).
public struct StoreSchema: Sendable, Hashable {
    /// The newest migration applied to the data; 0 for a database never prepared.
    public var version: Int
    /// The newest migration this binary knows and needs.
    public var required: Int
    /// The model identity the store last served (the model of the most recent instance that
    /// claimed), if it records one: `status` shows it without asking the provider.
    public var servedModelIdentity: String?

    public init(version: Int, required: Int, servedModelIdentity: String? = nil) {
        self.version = version
        self.required = required
        self.servedModelIdentity = servedModelIdentity
    }

    /// Throws ``SchemaBehindError`` when the data is at an older schema than this binary needs.
    public func check() throws(SchemaBehindError) {
        if version < required { throw SchemaBehindError(version: version, required: required) }
    }
}

/// A command that does not migrate met a database at an older schema than it needs.
public struct SchemaBehindError: Error, CustomStringConvertible, Sendable {
    public var version: Int
    public var required: Int

    public var description: String {
        version == 0
            ? "the database has no embed-star schema yet (this binary needs schema \(required)): run `embed-star migrate` (or `embed-star run`) first"
            : "the database is at schema \(version), this binary needs \(required): run `embed-star migrate`"
    }
}

public struct SearchFilter: Sendable, Hashable {
    public var language: String?
    /// Only vectors of this model identity (nil: any). Vectors of two models of one dimension
    /// are not comparable: a search during a model change names the query's model.
    public var modelIdentity: String?

    public init(language: String? = nil, modelIdentity: String? = nil) {
        self.language = language
        self.modelIdentity = modelIdentity
    }
}

/// The store has no lexical search (``RepoStore/lexicalSearch(_:limit:filter:)``).
/// The store cannot search by words now: it has no lexical search (`reason` nil), or its index
/// is not ready (`reason` says why: SurrealDB's words of a database filled before migration 8
/// are still being added).
public struct LexicalSearchUnsupported: Error, Sendable, CustomStringConvertible {
    public var store: String
    /// Why, when the store has lexical search but cannot answer now (its index is being built).
    public var reason: String?
    public init(store: String, reason: String? = nil) {
        self.store = store
        self.reason = reason
    }
    public var description: String { reason.map { "\(store): \($0)" } ?? "\(store) has no lexical search" }
}

/// What a store's lexical search can do now (``RepoStore/lexicalStatus()``), read from what the
/// store keeps: `status` and `/health` show it, so an operator sees a database filled before
/// lexical search existed catch up instead of guessing why `search` ranks by meaning alone.
public struct LexicalStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Lexical search answers.
        case ready
        /// The words of repos stored before lexical search existed are still being added
        /// (SurrealDB: by a running `run` or `backfill`).
        case filling
        /// Every repo's words are in; the index over them is being built.
        case building
        /// The store has no lexical search (`detail` says why).
        case unavailable
    }

    public var state: State
    /// Repos whose words the store holds, counted in it (nil: not counted apart from the repos,
    /// or no words kept).
    public var indexed: Int?
    /// Changes noted (a repo inserted, changed or deleted; a repo changed twice counts twice)
    /// whose words are not rewritten yet (nil: the store rewrites them in the change's own
    /// transaction, so none ever wait).
    public var waiting: Int?
    /// Why not ready, in words (nil when ready).
    public var detail: String?

    public init(state: State, indexed: Int? = nil, waiting: Int? = nil, detail: String? = nil) {
        self.state = state
        self.indexed = indexed
        self.waiting = waiting
        self.detail = detail
    }

    /// One line for `status`: `ready (12577 repos' words, 0 changes waiting)`.
    public var line: String {
        var parts: [String] = []
        if let indexed { parts.append("\(indexed) repos' words") }
        if let waiting { parts.append("\(waiting) changes waiting") }
        let counts = parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
        return "\(state.rawValue)\(counts)\(detail.map { ": \($0)" } ?? "")"
    }
}

public struct SearchHit: Sendable {
    public var repo: Repo
    /// Higher is closer: the cosine to the query vector (``RepoStore/nearest(to:limit:filter:)``),
    /// or the store's lexical score (``RepoStore/lexicalSearch(_:limit:filter:)``).
    public var score: Double

    public init(repo: Repo, score: Double) {
        self.repo = repo
        self.score = score
    }

    /// Two tiers of lexical hits as one answer of `limit`: `first` (repos with every word),
    /// then the repos of `then` (any word) not in it, their scores moved under the first's
    /// lowest, so the answer stays best first.
    public static func tiered(_ first: [SearchHit], then more: [SearchHit], limit: Int) -> [SearchHit] {
        let found = Set(first.map(\.repo.id))
        let more = more.filter { !found.contains($0.repo.id) }
        let floor = first.last?.score ?? 0
        let top = more.first?.score ?? 0
        let shift = first.isEmpty || top < floor ? 0 : top - floor + 1
        return Array((first + more.map { SearchHit(repo: $0.repo, score: $0.score - shift) }).prefix(limit))
    }
}

/// Where repos live and vectors are written.
///
/// The contract an implementation must keep:
/// - `prepare` is idempotent and safe when several instances call it at once.
/// - A repo is pending when it has no vector, when it changed since its vector was written,
///   or when its vector came from another model identity than `ClaimRequest.modelIdentity`; and it is neither
///   failed, nor waiting out a `retryAfter`, nor leased to another owner with time left.
/// - `claimPending` hands each pending repo to at most one owner at a time; an expired lease
///   may be taken by anyone. Concurrent claims never return the same repo. New and changed
///   repos come before stale ones (embedded by another model), which are limited to
///   `staleLimit` and marked `stale`.
/// - One model at a time: a claim records its owner as running with its model; an owner whose
///   model is not the one of the most recently started running owner (``ClaimRequest/liveness``)
///   gets nothing, so two models never undo each other's vectors.
/// - `stats` and `scan` read and never write; `embedded` counts only repos holding a vector of the asked
///   model whose text did not change since, so a repo never queued is pending, not embedded.
/// - `write` applies each write atomically and only if the caller still holds the lease and the
///   record's revision is the claimed one; otherwise it reports why and changes nothing. A store
///   may also refuse a write whose model is no longer the one it serves (a newer model took
///   over). An applied write ends the lease and clears the attempt count and last error.
/// - `recordFailures` counts an attempt, keeps the reason, ends the lease, and marks the repo
///   failed once `permanent` or once attempts reach `maxAttempts`, but only at the claimed
///   revision: a failure of a text that changed since only ends the lease.
/// - A claim hands out the stored hash (`embeddedHash`) only while the vector it came with is
///   stored, so an unchanged text never vouches for a vector that was removed.
/// - `release` ends leases without counting an attempt (shutdown, run-fatal errors); `renew`
///   extends leases still held, so a batch slower than its lease is not handed out twice.
/// - Records are read leniently (``Repo/decode(_:fallbackName:)``). A record that cannot be read
///   at all is never handed out: the store marks it failed with the reason (or skips and reports
///   it), so one malformed record neither stops a claim nor returns forever.
/// - Work that waits for the queue to run dry and that no claim's answer depends on (building a
///   search index, packing search data) is `maintain`, not part of `claimPending`: the pipeline
///   calls it after a claim that found nothing (once per idle poll, by the one worker that
///   polls) and when a backfill ends (unless stopped). `maintain` changes no count, lease or
///   state a claim or `stats` sees. (What decides a claim's answer stays in the claim: the
///   SurrealDB store re-checks its queue there, so an empty answer means nothing is pending.)
/// - `shareRateLimit` keeps, per provider account, each instance's last report (for an hour):
///   whether it uses the account (an active report counts for its `activeFor`, an inactive one
///   ends that at once), its own pause as a deadline on one clock, the store's (its next report
///   replaces it), and the header limits it saw with when it saw them. The answer: the other
///   instances counted, the latest deadline of any instance, the limits seen last. A store that
///   cannot share between processes keeps the default (every instance alone).
/// - `saveBatchJob` keeps a job until `removeBatchJob`; `batchJobs` gives every job kept, as
///   saved last, oldest first, to any instance (a job outlives the process that saved it).
/// - Methods are safe to call from many tasks at once and honour cancellation.
public protocol RepoStore: Sendable {
    /// Connects, creates or migrates what the store needs (`embed-star run`, `backfill`,
    /// `migrate`).
    func prepare() async throws

    /// Connects and reads the schema the data is at, writing nothing: no migration, no table,
    /// file or record created, none changed (a database that does not exist yet is at version
    /// 0). Commands other than `run`, `backfill` and `migrate` call this instead of `prepare`
    /// and refuse a database whose schema is behind (``StoreSchema/check()``).
    func openForReading() async throws -> StoreSchema

    func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo]

    func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome]

    func recordFailures(_ failures: [RepoFailure], owner: String, maxAttempts: Int) async throws -> [RepoID: FailureOutcome]

    func release(_ ids: [RepoID], owner: String) async throws

    /// Extends `owner`'s leases on `ids` to `leaseDuration` from now (a batch still in flight);
    /// returns the repos whose lease `owner` still held. A lease another owner took is not touched.
    /// A renewal also counts the owner as running (``ClaimRequest/liveness``).
    func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID>

    /// Ends every lease `owner` holds except on `except`; returns how many. After an outage the
    /// pipeline calls this for claims whose answers or releases were lost.
    func releaseAll(owner: String, except: Set<RepoID>) async throws -> Int

    /// Puts failed repos back in the queue with their attempts cleared, queued as of now
    /// (``oldestPendingSince(modelIdentity:)``); returns how many.
    func resetFailed() async throws -> Int

    /// Puts the named repos back in the queue, failed or not, with their attempts and last
    /// error cleared and their stored hash dropped, so their text is embedded again even if
    /// it did not change (the vector they hold stays searchable until the new one is written),
    /// claimed with ``ClaimedRepo/requeued`` set until a write lands; queued as of now; a new
    /// revision, so a write of any earlier claim (whoever holds it) is refused, and a lease on
    /// them ends. Ids that name no repo are skipped; returns how many were queued.
    func requeue(_ ids: [RepoID]) async throws -> Int

    /// The repos `reference` names, as ``scan(modelIdentity:after:limit:)`` would give them, with their
    /// lease: a record id (`repo:123`) names at most one; anything else is compared with each
    /// repo's full name (`owner/name`), ignoring case. Reads and never writes.
    func find(_ reference: String, modelIdentity: String) async throws -> [StoredRepo]

    /// Inserts repos or updates them by id, as a collector would (`embed-star import`): a new
    /// repo or a changed field makes it pending; an identical record changes nothing.
    func upsert(_ repos: [Repo]) async throws

    func stats(modelIdentity: String) async throws -> StoreStats

    /// When the longest-waiting pending repo for `modelIdentity` (not failed; leased or not) was queued:
    /// inserted, changed, requeued or put back by `retry-failed`; a repo pending only because
    /// another model embedded it counts from when `modelIdentity` started being served (or its sweep
    /// queued it), not from when it last changed. nil when nothing is pending, or when no
    /// pending repo has a recorded time. Reads and never writes; the monitoring refresher calls
    /// it about once a minute.
    func oldestPendingSince(modelIdentity: String) async throws -> Date?

    /// How many repos carry a vector from each model identity (`status` shows the coverage
    /// during a model change).
    func coverage() async throws -> [String: Int]

    /// The `limit` repos whose vectors are closest (cosine) to `vector`, closest first.
    func nearest(to vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit]

    /// The `limit` repos whose words best match `query`'s, best first (BM25 or the engine's
    /// equivalent over name, owner, full name, description, topics and language; the score is
    /// higher for a better match and compares only within one answer). Words are matched case
    /// folded, split at punctuation (`rust-serde-json` is `rust serde json`) and stemmed
    /// (``Words``); any word of the query may match. Every repo counts, embedded or not, and
    /// the index follows the collector's inserts, changes and deletes (at once, or within a
    /// moment when the store indexes in the background: SurrealDB within a few seconds while an
    /// instance of embed-star runs, `run` or `backfill`).
    /// `filter.language` applies; `filter.modelIdentity` does not. Reads and never writes. A
    /// store without it throws ``LexicalSearchUnsupported`` (the default), and search falls
    /// back to the vector alone.
    func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit]

    /// Whether ``lexicalSearch(_:limit:filter:)`` answers now and how far its words are, counted
    /// in the store (never inferred): `ready` exactly when lexical search answers, `indexed` the
    /// repos whose words are held, `waiting` the changes noted and not yet in the words. Reads
    /// and never writes. The default: `unavailable`, like the default lexical search.
    func lexicalStatus() async throws -> LexicalStatus

    /// Up to `limit` repos after the cursor `after` (nil: from the start), with their vectors and
    /// states for `modelIdentity`, in a stable order; reads and never writes. Paging through every repo
    /// sees each repo that existed throughout exactly once, and counting the states gives what
    /// `stats(modelIdentity:)` gives when nothing changed meanwhile. For reports and exports.
    func scan(modelIdentity: String, after: String?, limit: Int) async throws -> ScanPage

    func health() async -> ComponentHealth

    /// The store's idle work (see the contract above), for the instance `owner` serving `modelIdentity`.
    /// The store decides what is due and keeps it cheap when nothing is; the pipeline times it
    /// (`embed_star_store_query_duration_seconds{operation="maintain"}`), logs a failure and
    /// goes on. The default does nothing.
    func maintain(owner: String, modelIdentity: String) async throws

    /// Shares a provider account's rate limits between the instances using this store (see the
    /// contract above): records `report` and answers how many others use the account now, the
    /// pause they reported and the limits they learned. The pipeline calls it about once a
    /// second while it runs (``FleetRateLimit``). The default shares nothing
    /// (``RateLimitShare/alone(_:)``), and ``sharesRateLimits`` says so.
    func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare

    /// Whether ``shareRateLimit(_:)`` shares between instances (false: the default, every
    /// instance keeps the whole limit to itself).
    var sharesRateLimits: Bool { get }

    /// Keeps (or replaces, by ``BatchJob/id``) a batch job of `backfill --batch-api`, so a
    /// restarted backfill finds it. The default throws ``BatchJobsUnsupported``.
    func saveBatchJob(_ job: BatchJob) async throws
    /// The batch jobs kept, oldest first (the default: none).
    func batchJobs() async throws -> [BatchJob]
    /// Forgets a batch job (its answers are written, or it ended); an unknown id is no error.
    func removeBatchJob(_ id: String) async throws

    /// Closes connections. Called once at the end; the default does nothing.
    func shutdown() async
}

extension RepoStore {
    public func shutdown() async {}
    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare { .alone(report) }
    public var sharesRateLimits: Bool { false }
    public func saveBatchJob(_ job: BatchJob) async throws { throw BatchJobsUnsupported(store: String(describing: type(of: self))) }
    public func batchJobs() async throws -> [BatchJob] { [] }
    public func removeBatchJob(_ id: String) async throws {}
    public func maintain(owner: String, modelIdentity: String) async throws {}

    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        throw LexicalSearchUnsupported(store: String(describing: type(of: self)))
    }

    public func lexicalStatus() async throws -> LexicalStatus {
        LexicalStatus(state: .unavailable, detail: LexicalSearchUnsupported(store: String(describing: type(of: self))).description)
    }
}
