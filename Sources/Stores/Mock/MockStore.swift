import EmbedStarConfig
import EmbedStarCore
import Foundation
import Logging

/// An in-memory store with the same lease and conditional-write semantics as a real one, seeded
/// from a JSON file of repo records and optionally saved to a state file on shutdown, so CLI
/// commands run one after another see each other's work.
public actor MockStore: RepoStore {
    public struct Configuration: PluginConfiguration {
        /// A JSON array of repo records, as the collector writes them.
        public var seedFile: String?
        /// Where the store's state (records, vectors, attempts) is kept between runs; `nil` keeps
        /// everything in memory only.
        public var stateFile: String?

        public init(seedFile: String? = nil, stateFile: String? = nil) {
            self.seedFile = seedFile
            self.stateFile = stateFile
        }

        public enum CodingKeys: String, CodingKey, CaseIterable { case seedFile = "seed_file", stateFile = "state_file" }
    }

    /// One record and what embed-star knows about it.
    public struct Entry: Sendable, Codable {
        public var repo: Repo
        public var id: RepoID { repo.id }
        public var revision: Int
        public var embedding: [Float]?
        public var embeddingModel: String?
        public var embeddingHash: String?
        public var embeddedRevision: Int?
        public var embeddingGeneratedAt: Date?
        public var attempts: Int
        public var lastError: String?
        public var failed: Bool
        public var notBefore: Date?
        public var leaseOwner: String?
        public var leaseExpires: Date?
        /// When the record came in new or changed (or was requeued, or retried after failing).
        public var changedAt: Date?
        /// Named by `requeue` since its last vector (nil: no; optional for older state files).
        public var requeued: Bool?
    }

    private var entries: [Entry] = []
    private var index: [RepoID: Int] = [:]
    /// Every entry before this index is known not to be pending for `queueModel`: claims start here.
    private var firstCandidate = 0
    private var queueModel: String?
    /// Owners that claimed: their model, when they started with it, when they last claimed.
    private var owners: [String: (model: String, started: Date, seen: Date)] = [:]
    /// Each provider account's shared rate limits (``shareRateLimit(_:)``).
    private var rateLimits: [String: RateLimitLedger] = [:]
    /// `backfill --batch-api`'s jobs (in memory only, with the rest of a store without a state file).
    private var batchJobList: [BatchJob] = []
    private let configuration: Configuration
    private let directory: URL
    private let logger: Logger
    /// Records of the seed file that could not be read.
    public private(set) var rejectedRecords: [RecordError] = []
    private var loaded = false
    /// The state as ``openForReading()`` found it: saved again at shutdown only if it changed.
    private var readBaseline: Data?

    public init(configuration: Configuration = Configuration(), directory: URL = URL(fileURLWithPath: "."), logger: Logger = Logger(label: "embed-star.mock-store")) {
        self.configuration = configuration
        self.directory = directory
        self.logger = logger
    }

    /// A store holding `repos`, for tests.
    public init(repos: [Repo]) {
        configuration = Configuration()
        directory = URL(fileURLWithPath: ".")
        logger = Logger(label: "embed-star.mock-store")
        for repo in repos where index[repo.id] == nil {
            index[repo.id] = entries.count
            entries.append(Entry(repo: repo, revision: 1, attempts: 0, failed: false, changedAt: Date()))
        }
        loaded = true
    }

    private func url(_ path: String) -> URL {
        ConfigPath.resolve(path, against: directory)
    }

    // MARK: RepoStore

    public func prepare() async throws {
        guard !loaded else { return }
        loaded = true
        if let stateFile = configuration.stateFile, FileManager.default.fileExists(atPath: url(stateFile).path) {
            let data = try Data(contentsOf: url(stateFile))
            entries = try JSONDecoder().decode([Entry].self, from: data)
            index = Dictionary(entries.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { _, last in last })
            logger.info("mock store loaded its state", metadata: ["file": "\(stateFile)", "repos": "\(entries.count)"])
        } else if let seedFile = configuration.seedFile {
            let result = try MockStore.readRecords(from: url(seedFile))
            for repo in result.repos { upsert(repo) }
            rejectedRecords = result.rejected
            for problem in result.rejected.prefix(20) {
                logger.warning("skipped a record of the seed file", metadata: ["file": "\(seedFile)", "problem": "\(problem)"])
            }
            logger.info("mock store seeded", metadata: ["file": "\(seedFile)", "repos": "\(entries.count)", "rejected": "\(result.rejected.count)"])
        }
    }

    /// The mock store's data has one schema: version 1 once loaded (a state file that does not
    /// exist is read as an empty store, not created).
    public func openForReading() async throws -> StoreSchema {
        try await prepare()
        if readBaseline == nil { readBaseline = try JSONEncoder().encode(entries) }
        let served = owners.max { ($0.value.started, $0.key) < ($1.value.started, $1.key) }?.value.model
        return StoreSchema(version: 1, required: 1, servedModelIdentity: served ?? queueModel)
    }

    public func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        guard serves(request) else { return [] }
        if queueModel != request.modelIdentity {
            queueModel = request.modelIdentity
            firstCandidate = 0
        }
        let now = Date()
        var claimed: [ClaimedRepo] = []
        var staleCandidates: [Int] = []
        var position = firstCandidate
        var advancing = true
        while position < entries.count, claimed.count < request.limit {
            defer { position += 1 }
            let entry = entries[position]
            guard isPending(entry, model: request.modelIdentity) else {
                if advancing { firstCandidate = position + 1 }
                continue
            }
            advancing = false
            // A live lease is skipped whoever holds it: the holder is still working on it.
            if entry.leaseOwner != nil, let expires = entry.leaseExpires, expires > now { continue }
            if let notBefore = entry.notBefore, notBefore > now { continue }
            if isStale(entry, model: request.modelIdentity) {
                staleCandidates.append(position)  // after the new and changed ones
                continue
            }
            claimed.append(lease(position, request, now: now, stale: false))
        }
        for position in staleCandidates.prefix(min(request.limit - claimed.count, request.staleLimit ?? .max)) {
            claimed.append(lease(position, request, now: now, stale: true))
        }
        return claimed
    }

    /// Records the owner as running; true when its model is the one of the most recently
    /// started running owner.
    private func serves(_ request: ClaimRequest) -> Bool {
        let now = Date()
        let started = owners[request.owner].flatMap { $0.model == request.modelIdentity ? $0.started : nil } ?? now
        owners[request.owner] = (request.modelIdentity, started, now)
        owners = owners.filter { now.timeIntervalSince($0.value.seen) < ClaimRequest.ownerRetention.seconds }
        let live = owners.filter { now.timeIntervalSince($0.value.seen) <= request.liveness.seconds }
        let newest = live.max { ($0.value.started, $0.key) < ($1.value.started, $1.key) }
        return newest?.value.model == request.modelIdentity
    }

    private func lease(_ position: Int, _ request: ClaimRequest, now: Date, stale: Bool) -> ClaimedRepo {
        entries[position].leaseOwner = request.owner
        entries[position].leaseExpires = now.addingTimeInterval(request.leaseDuration.seconds)
        let entry = entries[position]
        return ClaimedRepo(repo: entry.repo, revision: String(entry.revision),
                           embeddedHash: entry.embeddingModel == request.modelIdentity && entry.embedding != nil ? entry.embeddingHash : nil,
                           attempts: entry.attempts, stale: stale, requeued: entry.requeued == true)
    }

    /// Unchanged since its vector, which another model made.
    private func isStale(_ entry: Entry, model: String) -> Bool {
        entry.embedding != nil && entry.embeddedRevision == entry.revision && entry.embeddingModel != model
    }

    public func coverage() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in entries where entry.embedding != nil {
            if let model = entry.embeddingModel { counts[model, default: 0] += 1 }
        }
        return counts
    }

    public func write(_ writes: [RepoWrite], owner: String) async throws -> [RepoID: WriteOutcome] {
        var outcomes: [RepoID: WriteOutcome] = [:]
        for write in writes {
            guard let position = index[write.id] else { outcomes[write.id] = .notFound; continue }
            var entry = entries[position]
            guard entry.leaseOwner == owner else { outcomes[write.id] = .leaseLost; continue }
            guard String(entry.revision) == write.revision else {
                entry.leaseOwner = nil
                entry.leaseExpires = nil
                entries[position] = entry
                outcomes[write.id] = .changedSinceClaim
                continue
            }
            switch write.change {
            case .embedded(let vector, let hash, let generatedAt):
                entry.embedding = vector
                entry.embeddingHash = hash
                entry.embeddingGeneratedAt = generatedAt
            case .unchanged(let hash):
                entry.embeddingHash = hash
            }
            entry.embeddingModel = write.modelIdentity
            entry.embeddedRevision = entry.revision
            entry.attempts = 0
            entry.lastError = nil
            entry.notBefore = nil
            entry.leaseOwner = nil
            entry.leaseExpires = nil
            entry.requeued = nil
            entries[position] = entry
            outcomes[write.id] = .applied
        }
        return outcomes
    }

    public func recordFailures(_ failures: [RepoFailure], owner: String, maxAttempts: Int) async throws -> [RepoID: FailureOutcome] {
        var outcomes: [RepoID: FailureOutcome] = [:]
        let now = Date()
        for failure in failures {
            guard let position = index[failure.id], entries[position].leaseOwner == owner else { continue }
            guard String(entries[position].revision) == failure.revision else {
                // A failure of a text changed since ends the lease and nothing else.
                entries[position].leaseOwner = nil
                entries[position].leaseExpires = nil
                firstCandidate = min(firstCandidate, position)
                continue
            }
            var entry = entries[position]
            entry.attempts += 1
            entry.lastError = failure.reason
            entry.leaseOwner = nil
            entry.leaseExpires = nil
            if failure.permanent || entry.attempts >= maxAttempts {
                entry.failed = true
                outcomes[failure.id] = .failed(attempts: entry.attempts)
            } else {
                entry.notBefore = now.addingTimeInterval(failure.retryAfter.seconds)
                outcomes[failure.id] = .willRetry(attempts: entry.attempts)
            }
            entries[position] = entry
        }
        return outcomes
    }

    public func release(_ ids: [RepoID], owner: String) async throws {
        for id in ids {
            guard let position = index[id], entries[position].leaseOwner == owner else { continue }
            entries[position].leaseOwner = nil
            entries[position].leaseExpires = nil
            firstCandidate = min(firstCandidate, position)
        }
    }

    public func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID> {
        let until = Date().addingTimeInterval(leaseDuration.seconds)
        owners[owner]?.seen = Date()  // running while it renews (see ClaimRequest.liveness)
        var held: Set<RepoID> = []
        for id in ids {
            guard let position = index[id], entries[position].leaseOwner == owner else { continue }
            entries[position].leaseExpires = until
            held.insert(id)
        }
        return held
    }

    public func releaseAll(owner: String, except: Set<RepoID>) async throws -> Int {
        var count = 0
        for position in entries.indices where entries[position].leaseOwner == owner && !except.contains(entries[position].id) {
            entries[position].leaseOwner = nil
            entries[position].leaseExpires = nil
            firstCandidate = min(firstCandidate, position)
            count += 1
        }
        return count
    }

    public func resetFailed() async throws -> Int {
        var count = 0
        for position in entries.indices where entries[position].failed {
            putBack(position)
            count += 1
        }
        return count
    }

    /// Pending again as of now, failed or not, with no attempts, error or retry delay.
    private func putBack(_ position: Int) {
        entries[position].failed = false
        entries[position].attempts = 0
        entries[position].lastError = nil
        entries[position].notBefore = nil
        entries[position].changedAt = Date()
        firstCandidate = min(firstCandidate, position)
    }

    public func requeue(_ ids: [RepoID]) async throws -> Int {
        var count = 0
        for id in Set(ids) {
            guard let position = index[id] else { continue }
            putBack(position)
            entries[position].leaseOwner = nil
            entries[position].leaseExpires = nil
            entries[position].embeddingHash = nil
            entries[position].embeddedRevision = nil
            entries[position].revision += 1
            entries[position].requeued = true
            count += 1
        }
        return count
    }

    public func find(_ reference: String, modelIdentity model: String) async throws -> [StoredRepo] {
        let now = Date()
        let positions = index[RepoID(reference)].map { [$0] }
            ?? entries.indices.filter { entries[$0].repo.fullName.lowercased() == reference.lowercased() }
        return positions.map { position in
            let entry = entries[position]
            var stored = storedRepo(entry, model: model)
            if let expires = entry.leaseExpires, expires > now, let owner = entry.leaseOwner {
                stored.leaseOwner = owner
                stored.leaseExpires = expires
            }
            return stored
        }
    }

    private func storedRepo(_ entry: Entry, model: String) -> StoredRepo {
        StoredRepo(repo: entry.repo, state: entry.failed ? .failed : isPending(entry, model: model) ? .pending : .embedded,
                   embedding: entry.embedding, embeddingModel: entry.embeddingModel, embeddingHash: entry.embeddingHash,
                   embeddingGeneratedAt: entry.embeddingGeneratedAt, attempts: entry.attempts, lastError: entry.lastError,
                   pendingSince: entry.failed || !isPending(entry, model: model) ? nil : entry.changedAt)
    }

    public func stats(modelIdentity model: String) async throws -> StoreStats {
        let now = Date()
        var stats = StoreStats(total: entries.count, embedded: 0, pending: 0, failed: 0, leased: 0)
        for entry in entries {
            if entry.failed {
                stats.failed += 1
            } else if isPending(entry, model: model) {
                stats.pending += 1
                if let expires = entry.leaseExpires, expires > now { stats.leased += 1 }
            } else {
                stats.embedded += 1
            }
        }
        return stats
    }

    public func oldestPendingSince(modelIdentity model: String) async throws -> Date? {
        // A repo only another model embedded waits since this model was first served.
        let served = owners.values.filter { $0.model == model }.map(\.started).min()
        return entries.lazy.filter { self.isPending($0, model: model) }
            .compactMap { self.isStale($0, model: model) ? served : $0.changedAt }.min()
    }

    /// BM25 in memory (``LexicalIndex``), built from the repos as they are now.
    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        let language = filter.language?.lowercased()
        return LexicalIndex(entries.map(\.repo)).search(query, limit: limit) { repo in
            language == nil || repo.language?.lowercased() == language
        }
    }

    /// Ready: the index is built from the repos at each search, so every repo's words are in.
    public func lexicalStatus() async throws -> LexicalStatus {
        LexicalStatus(state: .ready, indexed: entries.count, waiting: 0)
    }

    public func nearest(to vector: [Float], limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        var hits: [SearchHit] = []
        let queryNorm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard queryNorm > 0 else { return [] }
        for entry in entries {
            guard let embedding = entry.embedding, embedding.count == vector.count else { continue }
            if let language = filter.language, entry.repo.language?.lowercased() != language.lowercased() { continue }
            if let model = filter.modelIdentity, entry.embeddingModel != model { continue }
            var dot: Float = 0, norm: Float = 0
            for i in 0..<vector.count {
                dot += vector[i] * embedding[i]
                norm += embedding[i] * embedding[i]
            }
            guard norm > 0 else { continue }
            hits.append(SearchHit(repo: entry.repo, score: Double(dot / (queryNorm * norm.squareRoot()))))
        }
        return Array(hits.sorted { $0.score > $1.score }.prefix(limit))
    }

    public func scan(modelIdentity model: String, after: String?, limit: Int) async throws -> ScanPage {
        let start = after.flatMap(Int.init) ?? 0
        guard limit > 0, start < entries.count else { return ScanPage(repos: [], next: nil) }
        let end = min(entries.count, start + limit)
        let repos = entries[start..<end].map { storedRepo($0, model: model) }
        return ScanPage(repos: repos, next: end < entries.count ? String(end) : nil)
    }

    public func health() async -> ComponentHealth { .up }

    /// Shared by the instances that share this store object, in memory.
    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare {
        rateLimits[report.account, default: RateLimitLedger()].record(report, now: Date())
    }

    public nonisolated var sharesRateLimits: Bool { true }

    public func saveBatchJob(_ job: BatchJob) async throws {
        if let index = batchJobList.firstIndex(where: { $0.id == job.id }) { batchJobList[index] = job } else { batchJobList.append(job) }
    }

    public func batchJobs() async throws -> [BatchJob] {
        batchJobList.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func removeBatchJob(_ id: String) async throws { batchJobList.removeAll { $0.id == id } }

    public func shutdown() async {
        guard let stateFile = configuration.stateFile, loaded else { return }
        do {
            let target = url(stateFile)
            let state = try JSONEncoder().encode(entries)
            // A command that only read leaves the file as it was (or absent).
            if let baseline = readBaseline, baseline == state { return }
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try state.write(to: target, options: .atomic)
        } catch {
            logger.error("mock store could not save its state", metadata: ["file": "\(stateFile)", "error": "\(error)"])
        }
    }

    public func upsert(_ repos: [Repo]) async throws {
        for repo in repos { upsert(repo) }
    }

    // MARK: Beyond the contract: what a collector and tests do

    /// Inserts or updates a repo as the collector would. A change to any field makes a new revision.
    public func upsert(_ repo: Repo) {
        if let position = index[repo.id] {
            guard entries[position].repo != repo else { return }
            entries[position].repo = repo
            entries[position].revision += 1
            // A changed text deserves a new try, even after the old one failed.
            putBack(position)
        } else {
            index[repo.id] = entries.count
            entries.append(Entry(repo: repo, revision: 1, attempts: 0, failed: false, changedAt: Date()))
        }
    }

    /// Deletes repos as the collector would; their leases and vectors go with them.
    public func delete(_ ids: [RepoID]) {
        let gone = Set(ids)
        guard entries.contains(where: { gone.contains($0.id) }) else { return }
        entries.removeAll { gone.contains($0.id) }
        index = Dictionary(entries.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { _, last in last })
        firstCandidate = 0
    }

    /// Everything stored about one repo, for tests.
    public func entry(_ id: RepoID) -> Entry? {
        index[id].map { entries[$0] }
    }

    public var count: Int { entries.count }

    private func isPending(_ entry: Entry, model: String) -> Bool {
        !entry.failed && (entry.embeddedRevision != entry.revision || entry.embeddingModel != model || entry.embedding == nil)
    }

    /// Reads a JSON array of repo records; unreadable records are returned, not thrown.
    public static func readRecords(from url: URL) throws -> (repos: [Repo], rejected: [RecordError]) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw MockStoreError("cannot read seed file \(url.path): no such file or not readable")
        }
        guard case .array(let records) = try JSONDecoder().decode(JSONValue.self, from: data) else {
            throw MockStoreError("seed file \(url.path) must hold a JSON array of repo records")
        }
        var repos: [Repo] = []
        var rejected: [RecordError] = []
        for (position, record) in records.enumerated() {
            switch Repo.decode(record, fallbackName: "#\(position) of \(url.lastPathComponent)") {
            case .success(let repo): repos.append(repo)
            case .failure(let error): rejected.append(error)
            }
        }
        return (repos, rejected)
    }
}

public struct MockStoreError: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
