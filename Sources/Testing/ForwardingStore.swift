import EmbedStarCore
import Foundation

/// A store that hands every call to `inner`: a test store overrides only the behaviour it
/// breaks or observes and forwards the rest.
public protocol ForwardingStore: RepoStore {
    var inner: any RepoStore { get }
}

extension ForwardingStore {
    public func prepare() async throws { try await inner.prepare() }
    public func openForReading() async throws -> StoreSchema { try await inner.openForReading() }
    public func requeue(_ ids: [RepoID]) async throws -> Int { try await inner.requeue(ids) }
    public func find(_ reference: String, modelIdentity model: String) async throws -> [StoredRepo] { try await inner.find(reference, modelIdentity: model) }
    public func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] { try await inner.claimPending(request) }
    public func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] { try await inner.write(writes, owner: owner) }
    public func recordFailures(_ failures: [RepoFailure], owner: String, maxAttempts: Int) async throws -> [RepoID: FailureOutcome] {
        try await inner.recordFailures(failures, owner: owner, maxAttempts: maxAttempts)
    }
    public func release(_ ids: [RepoID], owner: String) async throws { try await inner.release(ids, owner: owner) }
    public func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID> {
        try await inner.renew(ids, owner: owner, leaseDuration: leaseDuration)
    }
    public func releaseAll(owner: String, except: Set<RepoID>) async throws -> Int { try await inner.releaseAll(owner: owner, except: except) }
    public func resetFailed() async throws -> Int { try await inner.resetFailed() }
    public func upsert(_ repos: [Repo]) async throws { try await inner.upsert(repos) }
    public func stats(modelIdentity model: String) async throws -> StoreStats { try await inner.stats(modelIdentity: model) }
    public func oldestPendingSince(modelIdentity model: String) async throws -> Date? { try await inner.oldestPendingSince(modelIdentity: model) }
    public func coverage() async throws -> [String: Int] { try await inner.coverage() }
    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        try await inner.lexicalSearch(query, limit: limit, filter: filter)
    }
    public func lexicalStatus() async throws -> LexicalStatus { try await inner.lexicalStatus() }
    public func nearest(to vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        try await inner.nearest(to: vector, limit: limit, filter: filter)
    }
    public func scan(modelIdentity model: String, after: String?, limit: Int) async throws -> ScanPage {
        try await inner.scan(modelIdentity: model, after: after, limit: limit)
    }
    public func health() async -> ComponentHealth { await inner.health() }
    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare { try await inner.shareRateLimit(report) }
    public var sharesRateLimits: Bool { inner.sharesRateLimits }
    public func saveBatchJob(_ job: BatchJob) async throws { try await inner.saveBatchJob(job) }
    public func batchJobs() async throws -> [BatchJob] { try await inner.batchJobs() }
    public func removeBatchJob(_ id: String) async throws { try await inner.removeBatchJob(id) }
    public func maintain(owner: String, modelIdentity model: String) async throws { try await inner.maintain(owner: owner, modelIdentity: model) }
    public func shutdown() async { await inner.shutdown() }
}
