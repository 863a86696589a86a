import EmbedStarCore
import Foundation
import Testing

/// One promise of the ``RepoStore`` contract, checked by ``StoreConformance``.
public enum StoreCheck: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case migrationsAreIdempotent
    case everyRepoStartsPending
    case twoClaimersNeverGetTheSameRepo
    case liveLeaseIsNotHandedOut
    case expiredLeaseIsTakenOver
    case conditionalWriteRejectsAChangedRepo
    case writeOfAMissingRepoIsNotFound
    case unchangedWriteKeepsTheVector
    case failuresCountAttemptsAndMarkFailed
    case retryAfterKeepsARepoOutOfTheQueue
    case releaseReturnsReposAtOnce
    case releaseAllSparesWhatIsInFlight
    case otherModelMakesRepoPending
    case staleReposComeLastAndWithinTheirLimit
    case coverageCountsVectorsPerModel
    case upsertOnlyChangesWhatChanged
    case statsFollowTheData
    case nearestOrdersByCosineAndFilters
    case unicodeRoundTrips
    case newestModelIsServed
    case changedFailedRepoIsPendingAgain
    case renewKeepsALeaseAlive
    case aStaleWriteAfterARequeueIsRefused
    case nearestKeepsToTheAskedModel
    case scanSeesEveryRepoOnceWithItsState
    case aFailureOfAnOlderTextOnlyEndsTheLease
    case requeueEmbedsNamedReposAgain
    case findNamesARepoByIdOrFullName
    case openForReadingReadsTheSchema
    case oldestPendingIsWhenTheLongestWaitingRepoWasQueued
    case maintainChangesNothingAClaimSees
    case lexicalSearchFindsWordsOfEveryField
    case lexicalSearchFollowsTheCollector
    case lexicalStatusCountsWhatIsStored
    case rateLimitsAreSharedByTheActiveInstances
    case batchJobsOutliveTheirProcess

    public var testDescription: String { rawValue }
}

/// The store contract as executable checks. A plugin's test target runs all of them in one test:
///
/// ```swift
/// @Test(arguments: StoreCheck.allCases)
/// func conformance(_ check: StoreCheck) async throws {
///     try await StoreConformance { MyStore(path: temporaryFile()) }.run(check)
/// }
/// ```
///
/// `make` returns a new, empty store each time it is called (two calls may return two handles on
/// the same data only when `shared` says so). The checks call `prepare`, load repos with `upsert`
/// and end with `shutdown`. A broken promise is recorded as a test issue naming the check.
public struct StoreConformance: Sendable {
    public typealias Factory = @Sendable () async throws -> any RepoStore

    let make: Factory
    /// Makes a second handle on the data of the first (another process or instance); when nil,
    /// the checks that need two instances use one.
    let second: (@Sendable (any RepoStore) async throws -> any RepoStore)?

    public init(make: @escaping Factory, second: (@Sendable (any RepoStore) async throws -> any RepoStore)? = nil) {
        self.make = make
        self.second = second
    }

    /// Repos with the shapes stores meet: full records, bare ones, unicode everywhere.
    public static func sampleRepos(count: Int = 12) -> [Repo] {
        let languages: [String?] = ["Rust", "Python", "Go", nil, "Swift"]
        return (0..<count).map { (n: Int) -> Repo in
            let owner = "owner\(n % 3)"
            let name = "project-\(n)"
            let description: String? = n == 1 ? nil : "Project number \(n) does something useful"
            let topics: [String] = n.isMultiple(of: 2) ? ["cli", "tool"] : []
            let created = Date(timeIntervalSince1970: 1_500_000_000 + Double(n))
            let updated = Date(timeIntervalSince1970: 1_600_000_000 + Double(n))
            return Repo(id: RepoID("repo:conf\(n)"), githubID: 900_000 + Int64(n), fullName: "\(owner)/\(name)",
                        description: description, url: "https://github.com/\(owner)/\(name)", stars: n * 10,
                        language: languages[n % languages.count], owner: Repo.Owner(login: owner), topics: topics,
                        createdAt: created, updatedAt: updated)
        }
    }

    let model = "conformance/model@4"

    public func run(_ check: StoreCheck) async throws {
        let store = try await make()
        try await store.prepare()
        do {
            try await run(check, on: store)
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
    }

    /// Runs `body` with a second handle on the same data (`second`, or the store itself), shut
    /// down after, thrown or not.
    func withSecond<T>(_ store: any RepoStore, _ body: (any RepoStore) async throws -> T) async throws -> T {
        let other = try await second?(store) ?? store
        let separate = other as AnyObject !== store as AnyObject
        do {
            let result = try await body(other)
            if separate { await other.shutdown() }
            return result
        } catch {
            if separate { await other.shutdown() }
            throw error
        }
    }

    func loaded(_ store: any RepoStore, _ count: Int = 12) async throws -> [Repo] {
        let repos = Self.sampleRepos(count: count)
        try await store.upsert(repos)
        return repos
    }

    func claim(_ store: any RepoStore, _ owner: String, limit: Int = 50, lease: Duration = .seconds(60), model: String? = nil) async throws -> [ClaimedRepo] {
        try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: lease, modelIdentity: model ?? self.model))
    }

    func embedded(_ claim: ClaimedRepo, _ vector: [Float] = [1, 0, 0, 0], hash: String = "h") -> RepoWrite {
        RepoWrite(id: claim.repo.id, revision: claim.revision, modelIdentity: model, change: .embedded(vector: vector, contentHash: hash, generatedAt: Date()))
    }

    func failure(_ claim: ClaimedRepo, permanent: Bool = false, retryAfter: Duration = .zero) -> RepoFailure {
        RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "provider said no: ✗", permanent: permanent, retryAfter: retryAfter)
    }

    /// Each check is a function in the file of its area (`StoreConformance+Claims.swift`,
    /// `+Writes`, `+Failures`, `+Models`, `+Reads`, `+Operator`, `+Lexical`, `+RateLimit`).
    private func run(_ check: StoreCheck, on store: any RepoStore) async throws {
        switch check {
        case .migrationsAreIdempotent: try await migrationsAreIdempotent(store, check)
        case .everyRepoStartsPending: try await everyRepoStartsPending(store, check)
        case .twoClaimersNeverGetTheSameRepo: try await twoClaimersNeverGetTheSameRepo(store, check)
        case .liveLeaseIsNotHandedOut: try await liveLeaseIsNotHandedOut(store, check)
        case .expiredLeaseIsTakenOver: try await expiredLeaseIsTakenOver(store, check)
        case .conditionalWriteRejectsAChangedRepo: try await conditionalWriteRejectsAChangedRepo(store, check)
        case .writeOfAMissingRepoIsNotFound: try await writeOfAMissingRepoIsNotFound(store, check)
        case .unchangedWriteKeepsTheVector: try await unchangedWriteKeepsTheVector(store, check)
        case .failuresCountAttemptsAndMarkFailed: try await failuresCountAttemptsAndMarkFailed(store, check)
        case .retryAfterKeepsARepoOutOfTheQueue: try await retryAfterKeepsARepoOutOfTheQueue(store, check)
        case .releaseReturnsReposAtOnce: try await releaseReturnsReposAtOnce(store, check)
        case .releaseAllSparesWhatIsInFlight: try await releaseAllSparesWhatIsInFlight(store, check)
        case .otherModelMakesRepoPending: try await otherModelMakesRepoPending(store, check)
        case .staleReposComeLastAndWithinTheirLimit: try await staleReposComeLastAndWithinTheirLimit(store, check)
        case .coverageCountsVectorsPerModel: try await coverageCountsVectorsPerModel(store, check)
        case .upsertOnlyChangesWhatChanged: try await upsertOnlyChangesWhatChanged(store, check)
        case .statsFollowTheData: try await statsFollowTheData(store, check)
        case .nearestOrdersByCosineAndFilters: try await nearestOrdersByCosineAndFilters(store, check)
        case .newestModelIsServed: try await newestModelIsServed(store, check)
        case .changedFailedRepoIsPendingAgain: try await changedFailedRepoIsPendingAgain(store, check)
        case .aFailureOfAnOlderTextOnlyEndsTheLease: try await aFailureOfAnOlderTextOnlyEndsTheLease(store, check)
        case .requeueEmbedsNamedReposAgain: try await requeueEmbedsNamedReposAgain(store, check)
        case .findNamesARepoByIdOrFullName: try await findNamesARepoByIdOrFullName(store, check)
        case .oldestPendingIsWhenTheLongestWaitingRepoWasQueued: try await oldestPendingIsWhenTheLongestWaitingRepoWasQueued(store, check)
        case .openForReadingReadsTheSchema: try await openForReadingReadsTheSchema(store, check)
        case .maintainChangesNothingAClaimSees: try await maintainChangesNothingAClaimSees(store, check)
        case .renewKeepsALeaseAlive: try await renewKeepsALeaseAlive(store, check)
        case .aStaleWriteAfterARequeueIsRefused: try await aStaleWriteAfterARequeueIsRefused(store, check)
        case .nearestKeepsToTheAskedModel: try await nearestKeepsToTheAskedModel(store, check)
        case .scanSeesEveryRepoOnceWithItsState: try await scanSeesEveryRepoOnceWithItsState(store, check)
        case .unicodeRoundTrips: try await unicodeRoundTrips(store, check)
        case .lexicalSearchFindsWordsOfEveryField: try await lexicalSearchFindsWordsOfEveryField(store, check)
        case .lexicalSearchFollowsTheCollector: try await lexicalSearchFollowsTheCollector(store, check)
        case .lexicalStatusCountsWhatIsStored: try await lexicalStatusCountsWhatIsStored(store, check)
        case .rateLimitsAreSharedByTheActiveInstances: try await rateLimitsAreSharedByTheActiveInstances(store, check)
        case .batchJobsOutliveTheirProcess: try await batchJobsOutliveTheirProcess(store, check)
        }
    }
}
