import Foundation

/// One repo as a store holds it, with what embed-star keeps about it: what `embed-star report`
/// reads, page by page (``RepoStore/scan(modelIdentity:after:limit:)``).
public struct StoredRepo: Sendable {
    public enum State: String, Sendable, Hashable, Codable {
        /// Holds a vector of the asked model for its current text.
        case embedded
        /// Waiting (new, changed, embedded by another model, or retrying after an error).
        case pending
        /// Out of the queue until `retry-failed`.
        case failed
    }

    public var repo: Repo
    /// The state for the model the scan was asked about, decided as ``RepoStore/stats(modelIdentity:)``
    /// decides it, so counting a scan gives the same numbers.
    public var state: State
    public var embedding: [Float]?
    /// The model identity that made `embedding`.
    public var embeddingModel: String?
    /// The ``ContentHash`` stored with `embedding`.
    public var embeddingHash: String?
    public var embeddingGeneratedAt: Date?
    /// Failed attempts since the last success.
    public var attempts: Int
    /// The reason of the last failed attempt, if the repo has not been embedded since.
    public var lastError: String?
    /// For a pending repo: when it was queued (inserted or changed, or queued by a model change),
    /// if the store records it; nil when it does not (records from before the store kept it).
    public var pendingSince: Date?
    /// Who holds a lease on the repo, and until when (``RepoStore/find(_:modelIdentity:)`` fills them;
    /// a scan may not). An expired lease is reported as none.
    public var leaseOwner: String?
    public var leaseExpires: Date?

    public init(repo: Repo, state: State, embedding: [Float]? = nil, embeddingModel: String? = nil, embeddingHash: String? = nil,
                embeddingGeneratedAt: Date? = nil, attempts: Int = 0, lastError: String? = nil, pendingSince: Date? = nil,
                leaseOwner: String? = nil, leaseExpires: Date? = nil) {
        self.repo = repo
        self.state = state
        self.embedding = embedding
        self.embeddingModel = embeddingModel
        self.embeddingHash = embeddingHash
        self.embeddingGeneratedAt = embeddingGeneratedAt
        self.attempts = attempts
        self.lastError = lastError
        self.pendingSince = pendingSince
        self.leaseOwner = leaseOwner
        self.leaseExpires = leaseExpires
    }
}

/// One page of a scan: the repos, and where the next page starts (nil after the last).
public struct ScanPage: Sendable {
    public var repos: [StoredRepo]
    /// Opaque; pass it back as `after` for the next page.
    public var next: String?
    /// Records on this page that could not be read at all (they are not in `repos`).
    public var unreadable: Int

    public init(repos: [StoredRepo], next: String?, unreadable: Int = 0) {
        self.repos = repos
        self.next = next
        self.unreadable = unreadable
    }
}

extension RepoStore {
    /// Every repo, a page at a time, in the store's order: `body` sees each page once and memory
    /// stays at one page.
    public func forEachPage(modelIdentity model: String, pageSize: Int = 500, _ body: (ScanPage) async throws -> Void) async throws {
        var cursor: String?
        repeat {
            try Task.checkCancellation()
            let page = try await scan(modelIdentity: model, after: cursor, limit: pageSize)
            try await body(page)
            cursor = page.next
        } while cursor != nil
    }
}
