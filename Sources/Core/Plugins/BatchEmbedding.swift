import Foundation

/// A provider that also embeds large sets of texts asynchronously, at a lower price and in a rate
/// limit of its own (OpenAI's Batch API: half the price, within 24 hours). `backfill --batch-api`
/// uses it (``BatchBackfill``); everything else uses ``EmbeddingProvider/embed(_:mode:)``.
public protocol BatchEmbeddingProvider: EmbeddingProvider {
    /// Submits `requests` (document texts) as one batch tagged `tag` (embed-star's job id);
    /// returns the provider's batch id.
    func submitBatch(_ requests: [BatchRequest], tag: String) async throws -> String
    /// The batch submitted with `tag`, if the provider has one (a process killed after the
    /// provider accepted a batch and before its id was kept finds it again this way).
    func batch(taggedWith tag: String) async throws -> String?
    /// Where the batch is.
    func batchState(_ id: String) async throws -> BatchState
    /// The answers of a completed batch by request id: a vector, or why that request failed.
    /// A request with no answer is missing.
    func batchAnswers(_ id: String) async throws -> [String: Result<[Float], ItemProblem>]
}

/// One text of a batch, with the id its answer comes back under.
public struct BatchRequest: Sendable, Hashable {
    public var id: String
    public var text: String

    public init(id: String, text: String) {
        self.id = id
        self.text = text
    }
}

/// A submitted batch's state as the provider says.
public enum BatchState: Sendable, Hashable {
    /// Validating, in progress or finalizing: `done` of `total` requests answered so far.
    case running(done: Int, total: Int)
    case completed
    /// It will not complete (failed, expired, cancelled): why.
    case ended(String)
}

/// A batch this instance submitted, kept in the store until its answers are written, so a
/// restarted `backfill --batch-api` picks it up (``RepoStore/saveBatchJob(_:)``).
public struct BatchJob: Codable, Sendable, Hashable {
    public struct Item: Codable, Sendable, Hashable {
        public var repo: RepoID
        public var revision: String
        /// The text's hash (what the vector is written with).
        public var hash: String
        /// The request (``BatchRequest/id``) whose answer is this repo's vector.
        public var request: String
        /// Attempts before this one (the failure's backoff).
        public var attempts: Int

        public init(repo: RepoID, revision: String, hash: String, request: String, attempts: Int) {
            self.repo = repo
            self.revision = revision
            self.hash = hash
            self.request = request
            self.attempts = attempts
        }
    }

    /// embed-star's id for the job, and the tag of its batch. The job is saved (with its owner)
    /// before its repos are claimed, so a process killed at any point leaves a job a later run
    /// finds: with items and no batch id, the batch is looked up by this tag; with none, the
    /// owner's leases are released.
    public var id: String
    /// The provider's batch id, once it accepted the batch.
    public var batchID: String?
    /// The owner of the leases on the job's repos (stable across restarts: the job's).
    public var owner: String
    public var modelIdentity: String
    public var items: [Item]
    public var createdAt: Date

    public init(id: String, batchID: String? = nil, owner: String, modelIdentity: String, items: [Item], createdAt: Date) {
        self.id = id
        self.batchID = batchID
        self.owner = owner
        self.modelIdentity = modelIdentity
        self.items = items
        self.createdAt = createdAt
    }
}

/// The store cannot keep batch jobs.
public struct BatchJobsUnsupported: Error, CustomStringConvertible {
    public var store: String
    public var description: String { "the \(store) store cannot keep batch jobs, so `backfill --batch-api` cannot resume after a restart" }
}
