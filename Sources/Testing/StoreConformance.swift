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
    private func withSecond<T>(_ store: any RepoStore, _ body: (any RepoStore) async throws -> T) async throws -> T {
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

    private func loaded(_ store: any RepoStore, _ count: Int = 12) async throws -> [Repo] {
        let repos = Self.sampleRepos(count: count)
        try await store.upsert(repos)
        return repos
    }

    private func claim(_ store: any RepoStore, _ owner: String, limit: Int = 50, lease: Duration = .seconds(60), model: String? = nil) async throws -> [ClaimedRepo] {
        try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: lease, model: model ?? self.model))
    }

    private func embedded(_ claim: ClaimedRepo, _ vector: [Float] = [1, 0, 0, 0], hash: String = "h") -> RepoWrite {
        RepoWrite(id: claim.repo.id, revision: claim.revision, model: model, change: .embedded(vector: vector, contentHash: hash, generatedAt: Date()))
    }

    private func failure(_ claim: ClaimedRepo, permanent: Bool = false, retryAfter: Duration = .zero) -> RepoFailure {
        RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "provider said no: ✗", permanent: permanent, retryAfter: retryAfter)
    }

    private func run(_ check: StoreCheck, on store: any RepoStore) async throws {
        switch check {
        case .migrationsAreIdempotent:
            let repos = try await loaded(store, 3)
            try await store.prepare()
            try await withSecond(store) { other in
                async let a: Void = store.prepare()
                async let b: Void = other.prepare()
                _ = try await (a, b)
            }
            #expect(try await store.stats(model: model).total == repos.count, "\(check): a repeated prepare lost or duplicated repos")

        case .everyRepoStartsPending:
            let repos = try await loaded(store)
            #expect(try await store.stats(model: model) == StoreStats(total: repos.count, embedded: 0, pending: repos.count, failed: 0, leased: 0))
            let claimed = try await claim(store, "a")
            #expect(Set(claimed.map(\.repo.id)) == Set(repos.map(\.id)), "\(check): a claim must hand out every pending repo")
            #expect(claimed.allSatisfy { $0.attempts == 0 && $0.embeddedHash == nil })
            #expect(try await store.stats(model: model).leased == repos.count)

        case .twoClaimersNeverGetTheSameRepo:
            let repos = try await loaded(store, 40)
            let ids = try await withSecond(store) { other in
                try await withThrowingTaskGroup(of: [RepoID].self) { group in
                    for owner in 0..<8 {
                        let target = owner.isMultiple(of: 2) ? store : other
                        group.addTask { try await claim(target, "owner\(owner)", limit: 7).map(\.repo.id) }
                    }
                    return try await group.reduce(into: [RepoID]()) { $0 += $1 }
                }
            }
            #expect(ids.count == repos.count, "\(check): 8 claimers of 7 should share all 40 repos")
            #expect(Set(ids).count == ids.count, "\(check): a repo was handed to two claimers")

        case .liveLeaseIsNotHandedOut:
            let repos = try await loaded(store, 3)
            #expect(try await claim(store, "a").count == repos.count)
            #expect(try await claim(store, "b").isEmpty, "\(check): a leased repo was handed to another owner")
            #expect(try await claim(store, "a").isEmpty, "\(check): a leased repo was handed out twice to its owner")

        case .expiredLeaseIsTakenOver:
            _ = try await loaded(store, 3)
            let first = try await claim(store, "a", lease: .milliseconds(200))
            try await Task.sleep(for: .milliseconds(1200))  // stores may keep time in whole seconds
            let second = try await claim(store, "b")
            #expect(Set(second.map(\.repo.id)) == Set(first.map(\.repo.id)), "\(check): an expired lease must be claimable")
            let late = try await store.write([embedded(first[0])], owner: "a")
            #expect(late[first[0].repo.id] == .leaseLost, "\(check): the old owner's write must be refused")
            let current = try await store.write([embedded(second[0])], owner: "b")
            #expect(current[second[0].repo.id] == .applied)

        case .conditionalWriteRejectsAChangedRepo:
            _ = try await loaded(store, 2)
            let claimed = try await claim(store, "a")
            var changed = claimed[0].repo
            changed.description = "changed while it was being embedded"
            try await store.upsert([changed])
            let outcomes = try await store.write(claimed.map { embedded($0) }, owner: "a")
            #expect(outcomes[changed.id] == .changedSinceClaim, "\(check): a write over a changed repo must be refused")
            #expect(outcomes[claimed[1].repo.id] == .applied)
            #expect(try await store.stats(model: model) == StoreStats(total: 2, embedded: 1, pending: 1, failed: 0, leased: 0))
            let again = try await claim(store, "b")
            #expect(again.map(\.repo.id) == [changed.id])
            #expect(again.first?.repo.description == changed.description)

        case .writeOfAMissingRepoIsNotFound:
            _ = try await loaded(store, 1)
            let claimed = try await claim(store, "a")
            var ghost = embedded(claimed[0])
            ghost.id = RepoID("repo:conformance-missing")
            let outcomes = try await store.write([ghost], owner: "a")
            #expect(outcomes[ghost.id] == .notFound)

        case .unchangedWriteKeepsTheVector:
            _ = try await loaded(store, 1)
            var claimed = try await claim(store, "a")
            _ = try await store.write([embedded(claimed[0], [0, 1, 0, 0], hash: "same")], owner: "a")
            var touched = claimed[0].repo
            touched.updatedAt = Date(timeIntervalSince1970: 1_700_000_000)
            try await store.upsert([touched])
            claimed = try await claim(store, "a")
            #expect(claimed.count == 1, "\(check): a changed record must be pending again")
            #expect(claimed.first?.embeddedHash == "same", "\(check): the claim must carry the stored hash")
            let outcome = try await store.write([RepoWrite(id: touched.id, revision: claimed[0].revision, model: model, change: .unchanged(contentHash: "same"))], owner: "a")
            #expect(outcome[touched.id] == .applied)
            #expect(try await claim(store, "a").isEmpty)
            let hits = try await store.nearest(to: [0, 1, 0, 0], limit: 1, filter: SearchFilter())
            #expect(hits.first?.repo.id == touched.id, "\(check): an unchanged write must keep the vector")

        case .failuresCountAttemptsAndMarkFailed:
            _ = try await loaded(store, 2)
            var claimed = try await claim(store, "a")
            let (retried, permanent) = (claimed[0].repo.id, claimed[1].repo.id)
            var outcomes = try await store.recordFailures([failure(claimed[0]), failure(claimed[1], permanent: true)], owner: "a", maxAttempts: 2)
            #expect(outcomes[retried] == .willRetry(attempts: 1))
            #expect(outcomes[permanent] == .failed(attempts: 1))
            claimed = try await claim(store, "a")
            #expect(claimed.map(\.repo.id) == [retried])
            #expect(claimed.first?.attempts == 1)
            outcomes = try await store.recordFailures([failure(claimed[0])], owner: "a", maxAttempts: 2)
            #expect(outcomes[retried] == .failed(attempts: 2), "\(check): max_attempts reached must mark the repo failed")
            #expect(try await store.stats(model: model) == StoreStats(total: 2, embedded: 0, pending: 0, failed: 2, leased: 0))
            #expect(try await claim(store, "a").isEmpty, "\(check): a failed repo must leave the queue")
            let stranger = try await store.recordFailures([failure(claimed[0])], owner: "b", maxAttempts: 2)
            #expect(stranger.isEmpty, "\(check): a failure from an owner without the lease must be ignored")
            #expect(try await store.resetFailed() == 2)
            let back = try await claim(store, "a")
            #expect(back.count == 2 && back.allSatisfy { $0.attempts == 0 }, "\(check): retry-failed must clear the attempts")

        case .retryAfterKeepsARepoOutOfTheQueue:
            _ = try await loaded(store, 1)
            let claimed = try await claim(store, "a")
            _ = try await store.recordFailures([failure(claimed[0], retryAfter: .seconds(60))], owner: "a", maxAttempts: 5)
            #expect(try await claim(store, "a").isEmpty, "\(check): a repo waiting out retry_after was handed out")
            #expect(try await store.stats(model: model).pending == 1)

        case .releaseReturnsReposAtOnce:
            _ = try await loaded(store, 4)
            let claimed = try await claim(store, "a")
            try await store.release(claimed.map(\.repo.id), owner: "b")
            #expect(try await claim(store, "c").isEmpty, "\(check): a release by another owner must change nothing")
            try await store.release(claimed.map(\.repo.id), owner: "a")
            let again = try await claim(store, "c")
            #expect(again.count == 4 && again.allSatisfy { $0.attempts == 0 }, "\(check): a release must not count an attempt")

        case .releaseAllSparesWhatIsInFlight:
            _ = try await loaded(store, 5)
            let claimed = try await claim(store, "a")
            #expect(try await store.releaseAll(owner: "b", except: []) == 0)
            #expect(try await store.releaseAll(owner: "a", except: [claimed[0].repo.id]) == 4)
            let again = try await claim(store, "c")
            #expect(Set(again.map(\.repo.id)) == Set(claimed.dropFirst().map(\.repo.id)))

        case .otherModelMakesRepoPending:
            _ = try await loaded(store, 1)
            let claimed = try await claim(store, "a")
            _ = try await store.write([embedded(claimed[0])], owner: "a")
            #expect(try await claim(store, "a").isEmpty)
            #expect(try await store.stats(model: "conformance/other@4").pending == 1)
            let other = try await claim(store, "a", model: "conformance/other@4")
            #expect(other.count == 1, "\(check): a vector from another model must make the repo pending")
            #expect(other.first?.embeddedHash == nil, "\(check): another model's hash must not be offered")

        case .staleReposComeLastAndWithinTheirLimit:
            let repos = try await loaded(store, 6)
            let first = try await claim(store, "a")
            _ = try await store.write(first.map { embedded($0) }, owner: "a")
            var changed = repos[4]
            changed.description = "changed after the model's vector"
            try await store.upsert([changed])
            // Another model now: five repos are stale, one is changed.
            let other = "conformance/other@4"
            let paced = try await store.claimPending(ClaimRequest(owner: "b", limit: 10, leaseDuration: .seconds(60), model: other, staleLimit: 2))
            #expect(paced.count == 3, "\(check): the changed repo plus two stale ones, got \(paced.count)")
            #expect(paced.first?.repo.id == changed.id && paced.first?.stale == false, "\(check): a changed repo comes first and is not stale")
            let staleMarked = paced.dropFirst().allSatisfy { $0.stale }
            #expect(staleMarked, "\(check): repos only another model embedded are marked stale")
            let none = try await store.claimPending(ClaimRequest(owner: "b", limit: 10, leaseDuration: .seconds(60), model: other, staleLimit: 0))
            #expect(none.isEmpty, "\(check): a stale limit of 0 holds every stale repo back")
            let rest = try await store.claimPending(ClaimRequest(owner: "b", limit: 10, leaseDuration: .seconds(60), model: other))
            let restStale = rest.allSatisfy { $0.stale }
            #expect(rest.count == 3 && restStale, "\(check): no limit hands out the other three")

        case .coverageCountsVectorsPerModel:
            _ = try await loaded(store, 5)
            #expect(try await store.coverage().isEmpty)
            let claimed = try await claim(store, "a", limit: 3)
            _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
            // An instance of another model starts (the newest is served) and embeds the rest.
            let other = "conformance/other@4"
            let rest = try await claim(store, "b", model: other).filter { !$0.stale }
            _ = try await store.write(rest.map {
                RepoWrite(id: $0.repo.id, revision: $0.revision, model: other, change: .embedded(vector: [0, 1, 0, 0], contentHash: "o", generatedAt: Date()))
            }, owner: "b")
            #expect(try await store.coverage() == [model: 3, other: 2], "\(check): vectors per model")

        case .upsertOnlyChangesWhatChanged:
            let repos = try await loaded(store, 3)
            let claimed = try await claim(store, "a")
            _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
            try await store.upsert(repos)
            #expect(try await store.stats(model: model).pending == 0, "\(check): an identical record must not become pending")
            var changed = repos[1]
            changed.topics = ["new-topic"]
            let added = Repo(id: RepoID("repo:conf-new"), fullName: "new/one")
            try await store.upsert([changed, added])
            #expect(try await store.stats(model: model) == StoreStats(total: 4, embedded: 2, pending: 2, failed: 0, leased: 0))
            let pending = Set(try await claim(store, "a").map(\.repo.id))
            #expect(pending == [changed.id, added.id], "\(check): exactly the changed and the new repo must be pending")

        case .statsFollowTheData:
            _ = try await loaded(store, 6)
            let claimed = try await claim(store, "a", limit: 4)
            _ = try await store.write([embedded(claimed[0]), embedded(claimed[1])], owner: "a")
            _ = try await store.recordFailures([failure(claimed[2], permanent: true)], owner: "a", maxAttempts: 5)
            #expect(try await store.stats(model: model) == StoreStats(total: 6, embedded: 2, pending: 3, failed: 1, leased: 1))

        case .nearestOrdersByCosineAndFilters:
            _ = try await loaded(store, 5)
            let claimed = try await claim(store, "a")
            let vectors: [[Float]] = [[1, 0, 0, 0], [0.7, 0.7, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2], [-1, 0, 0, 0]]
            _ = try await store.write(zip(claimed, vectors).map { embedded($0, $1) }, owner: "a")
            let hits = try await store.nearest(to: [2, 0.2, 0, 0], limit: 3, filter: SearchFilter())
            #expect(hits.map(\.repo.id) == [claimed[0].repo.id, claimed[1].repo.id, claimed[2].repo.id] || hits.map(\.repo.id) == [claimed[0].repo.id, claimed[1].repo.id, claimed[3].repo.id],
                    "\(check): hits must come closest first")
            #expect(hits.count == 3)
            if hits.count == 3 {
                #expect(hits[0].score > hits[1].score && hits[1].score > hits[2].score)
                #expect(abs(hits[0].score - 0.995) < 0.01, "\(check): the score must be the cosine similarity")
            }
            let target = try #require(claimed.first { $0.repo.language != nil })
            let language = try #require(target.repo.language)
            let filtered = try await store.nearest(to: [1, 0, 0, 0], limit: 5, filter: SearchFilter(language: language.uppercased()))
            #expect(!filtered.isEmpty && filtered.allSatisfy { $0.repo.language == language }, "\(check): the language filter must ignore case")
            #expect(filtered.contains { $0.repo.id == target.repo.id })

        case .newestModelIsServed:
            // A rolling deploy: owner "old" runs model A, then "new" starts with model B.
            _ = try await loaded(store, 4)
            let other = "conformance/other@4"
            // Far longer than the steps below take on a loaded machine (a 2.x dev server under
            // the other suites has taken over 5 s); the last claim asks with a short one instead.
            let live: Duration = .seconds(120), short: Duration = .seconds(1)
            func claimAs(_ owner: String, _ model: String, limit: Int = 2, liveness: Duration = live) async throws -> [ClaimedRepo] {
                try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: .seconds(60), model: model, liveness: liveness))
            }
            let first = try await claimAs("old", model)
            #expect(first.count == 2, "\(check): the only running owner is served")
            _ = try await store.write(first.map { embedded($0) }, owner: "old")
            try await Task.sleep(for: .milliseconds(20))
            let newer = try await claimAs("new", other, limit: 10)
            #expect(newer.count == 4, "\(check): the newest owner's model is served, every repo without its vector pending, got \(newer.count)")
            #expect(try await claimAs("old", model).isEmpty, "\(check): an owner on a superseded model must get nothing")
            try await store.release(newer.map(\.repo.id), owner: "new")
            #expect(try await claimAs("old", model).isEmpty, "\(check): still nothing while the newer owner runs")
            // The newer owner stops: once its claims are older than the liveness, the old model is served again.
            try await Task.sleep(for: short + .milliseconds(300))
            let again = try await claimAs("old", model, limit: 10, liveness: short)
            #expect(again.count == 2, "\(check): with the newer owner gone, the running owner is served, got \(again.count)")

        case .changedFailedRepoIsPendingAgain:
            let repos = try await loaded(store, 1)
            let claimed = try await claim(store, "a")
            _ = try await store.recordFailures([failure(claimed[0], permanent: true)], owner: "a", maxAttempts: 5)
            #expect(try await store.stats(model: model).failed == 1)
            var changed = repos[0]
            changed.description = "a new text deserves a new try"
            try await store.upsert([changed])
            #expect(try await store.stats(model: model) == StoreStats(total: 1, embedded: 0, pending: 1, failed: 0, leased: 0),
                    "\(check): a failed repo whose text changed is pending again")
            let again = try await claim(store, "a")
            #expect(again.count == 1 && again.first?.attempts == 0, "\(check): with its attempts cleared")

        case .aFailureOfAnOlderTextOnlyEndsTheLease:
            // The provider rejects the text of a claim; the collector changes the repo before the
            // failure is recorded: the new text is pending at once, with no attempt counted.
            let repos = try await loaded(store, 1)
            let claimed = try await claim(store, "a")
            var changed = repos[0]
            changed.description = "rewritten while the old text was being rejected"
            try await store.upsert([changed])
            let outcomes = try await store.recordFailures([failure(claimed[0], permanent: true)], owner: "a", maxAttempts: 5)
            #expect(outcomes[claimed[0].repo.id] == nil, "\(check): a failure of an older text must not count")
            #expect(try await store.stats(model: model) == StoreStats(total: 1, embedded: 0, pending: 1, failed: 0, leased: 0),
                    "\(check): the repo whose text changed is pending, not failed, and not leased")
            let again = try await claim(store, "b")
            #expect(again.count == 1 && again.first?.attempts == 0 && again.first?.repo.description == changed.description,
                    "\(check): the new text is handed out at once, with no attempt counted")

        case .requeueEmbedsNamedReposAgain:
            // Embedded, failed and leased repos, each named: all pending again, handed out with
            // no stored hash (so embedded again though unchanged) and no attempts.
            let repos = try await loaded(store, 4)
            let first = try await claim(store, "a", limit: 4)
            #expect(first.count == 4)
            let byID = Dictionary(uniqueKeysWithValues: first.map { ($0.repo.id, $0) })
            let (done, failing, leased) = (byID[repos[0].id]!, byID[repos[1].id]!, byID[repos[2].id]!)
            _ = try await store.write([embedded(done), embedded(byID[repos[3].id]!)], owner: "a")
            _ = try await store.recordFailures([failure(failing, permanent: true)], owner: "a", maxAttempts: 5)
            #expect(try await store.stats(model: model) == StoreStats(total: 4, embedded: 2, pending: 1, failed: 1, leased: 1))
            let queued = try await store.requeue([done.repo.id, failing.repo.id, leased.repo.id, RepoID("repo:conf-nowhere")])
            #expect(queued == 3, "\(check): three named repos exist, one name is unknown")
            #expect(try await store.stats(model: model) == StoreStats(total: 4, embedded: 1, pending: 3, failed: 0, leased: 0),
                    "\(check): the named repos are pending and unleased; the unnamed one stays embedded")
            let again = try await claim(store, "b", limit: 10)
            #expect(Set(again.map(\.repo.id)) == [done.repo.id, failing.repo.id, leased.repo.id])
            #expect(again.allSatisfy { $0.embeddedHash == nil && $0.attempts == 0 && $0.requeued },
                    "\(check): a requeued repo is handed out with no hash to vouch for it, no attempts, marked requeued")
            #expect(try await store.write([embedded(leased)], owner: "a")[leased.repo.id] != .applied,
                    "\(check): the lease a requeue ended does not write")
            #expect(try await store.nearest(to: [1, 0, 0, 0], limit: 10, filter: SearchFilter(model: model)).contains { $0.repo.id == done.repo.id },
                    "\(check): the vector of a requeued repo stays searchable until the new one is written")
            // One owner (the workers of one instance share it) claims a repo, it is requeued and
            // claimed again by the same owner: the first claim's write is refused, the second's lands.
            let extra = Repo(id: RepoID("repo:conf-same-owner"), fullName: "same/owner", description: "claimed twice by one owner")
            try await store.upsert([extra])
            let earlier = try await claim(store, "c")
            #expect(earlier.map(\.repo.id) == [extra.id])
            #expect(try await store.requeue([extra.id]) == 1)
            let later = try await claim(store, "c")
            #expect(later.map(\.repo.id) == [extra.id] && later.first?.requeued == true)
            if let first = earlier.first, let second = later.first {
                #expect(try await store.write([embedded(first, hash: "stale")], owner: "c")[extra.id] != .applied,
                        "\(check): a write of the claim before the requeue is refused, even from the same owner")
                // The refusal may end the lease (as after a change); then the repo is claimed again.
                if try await store.write([embedded(second, hash: "fresh")], owner: "c")[extra.id] != .applied {
                    let third = try await claim(store, "c")
                    #expect(third.first?.requeued == true, "\(check): the mark stays until a write lands")
                    #expect(try await store.write(third.map { embedded($0, hash: "fresh") }, owner: "c")[extra.id] == .applied)
                }
            }
            var changed = extra
            changed.description = "changed after its requeued vector was written"
            try await store.upsert([changed])
            #expect(try await claim(store, "c").first?.requeued == false, "\(check): a write ends the requeue mark")

        case .findNamesARepoByIdOrFullName:
            let repos = try await loaded(store, 3)
            let byID = try await store.find(repos[0].id.rawValue, model: model)
            #expect(byID.map(\.repo.id) == [repos[0].id] && byID.first?.state == .pending && byID.first?.leaseOwner == nil)
            let byName = try await store.find(repos[1].fullName.uppercased(), model: model)
            #expect(byName.map(\.repo.id) == [repos[1].id], "\(check): owner/name is matched ignoring case")
            #expect(try await store.find("nobody/nothing", model: model).isEmpty)
            #expect(try await store.find("repo:conf-nowhere", model: model).isEmpty)
            let claimed = try await claim(store, "a", limit: 3)
            let leased = try await store.find(repos[2].id.rawValue, model: model).first
            #expect(leased?.leaseOwner == "a" && (leased?.leaseExpires ?? .distantPast) > Date(), "\(check): the lease holder and its expiry")
            let byClaim = Dictionary(uniqueKeysWithValues: claimed.map { ($0.repo.id, $0) })
            _ = try await store.write([embedded(byClaim[repos[0].id]!, [0, 1, 0, 0], hash: "hash-0")], owner: "a")
            _ = try await store.recordFailures([failure(byClaim[repos[1].id]!)], owner: "a", maxAttempts: 5)
            let written = try await store.find(repos[0].id.rawValue, model: model).first
            #expect(written?.state == .embedded && written?.embedding == [0, 1, 0, 0] && written?.embeddingHash == "hash-0"
                    && written?.embeddingModel == model && written?.leaseOwner == nil, "\(check): an embedded repo with its vector, hash and model")
            let failed = try await store.find(repos[1].id.rawValue, model: model).first
            #expect(failed?.state == .pending && failed?.attempts == 1 && failed?.lastError == "provider said no: ✗" && failed?.leaseOwner == nil,
                    "\(check): a repo retrying with its attempts and last error")

        case .oldestPendingIsWhenTheLongestWaitingRepoWasQueued:
            let loadedAt = Date()
            let repos = try await loaded(store, 3)
            let first = try await store.oldestPendingSince(model: model)
            #expect(first.map { abs($0.timeIntervalSince(loadedAt)) < 5 } == true, "\(check): the repos were queued when loaded: \(String(describing: first))")
            let claimed = try await claim(store, "a")
            _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
            #expect(try await store.oldestPendingSince(model: model) == nil, "\(check): nothing is pending")
            try await Task.sleep(for: .milliseconds(1_100))
            let changedAt = Date()
            var changed = repos[1]
            changed.description = "changed after everything was embedded"
            try await store.upsert([changed])
            let second = try await store.oldestPendingSince(model: model)
            #expect(second.map { $0.timeIntervalSince(changedAt) > -0.5 && $0.timeIntervalSince(changedAt) < 5 } == true,
                    "\(check): the changed repo is pending since it changed, not since it was loaded: \(String(describing: second))")
            let again = try await claim(store, "a")
            _ = try await store.recordFailures(again.map { failure($0, permanent: true) }, owner: "a", maxAttempts: 5)
            #expect(try await store.oldestPendingSince(model: model) == nil, "\(check): a failed repo is not pending")
            // Put back by retry-failed: pending since then, not since it changed.
            try await Task.sleep(for: .milliseconds(1_100))
            let resetAt = Date()
            #expect(try await store.resetFailed() == 1)
            let reset = try await store.oldestPendingSince(model: model)
            #expect(reset.map { $0.timeIntervalSince(resetAt) > -0.5 } == true, "\(check): pending since it was retried: \(String(describing: reset))")
            // Another model served: the repos embedded by the first wait since the second started,
            // not since they changed.
            let retried = try await claim(store, "a")
            _ = try await store.write(retried.map { embedded($0) }, owner: "a")
            try await Task.sleep(for: .milliseconds(1_100))
            let switchedAt = Date()
            let other = "conformance/other@4"
            var stale: Date?
            for _ in 0..<5 where stale == nil {
                _ = try await claim(store, "z", limit: 1, model: other)
                stale = try await store.oldestPendingSince(model: other)
            }
            #expect(stale.map { $0.timeIntervalSince(switchedAt) > -0.5 } == true,
                    "\(check): repos another model embedded wait since this model was served: \(String(describing: stale))")

        case .openForReadingReadsTheSchema:
            let repos = try await loaded(store, 2)
            let prepared = try await store.openForReading()
            #expect(prepared.version >= prepared.required && prepared.required > 0, "\(check): a prepared store is at its schema")
            _ = try await claim(store, "a", model: model)
            try await withSecond(store) { other in
                let schema = try await other.openForReading()
                #expect(schema.servedModel == model, "\(check): the model the store serves is read back")
                #expect(try await other.stats(model: model).total == repos.count)
            }

        case .renewKeepsALeaseAlive:
            _ = try await loaded(store, 3)
            let claimed = try await claim(store, "a", lease: .milliseconds(600))
            let ids = claimed.map(\.repo.id)
            #expect(try await store.renew(ids, owner: "b", leaseDuration: .seconds(60)).isEmpty, "\(check): only the holder renews")
            #expect(try await store.renew(ids, owner: "a", leaseDuration: .seconds(60)) == Set(ids))
            try await Task.sleep(for: .milliseconds(900))
            #expect(try await claim(store, "b").isEmpty, "\(check): a renewed lease must not be handed out when the first one would have run out")
            let writes = try await store.write(claimed.map { embedded($0) }, owner: "a")
            #expect(writes.values.allSatisfy { $0 == .applied }, "\(check): the holder of a renewed lease writes")
            // A lease taken over after it ran out is not renewed by its former holder.
            try await store.upsert([Repo(id: RepoID("repo:conf-late"), fullName: "late/one")])
            let late = try await claim(store, "a", lease: .milliseconds(200))
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await claim(store, "b").count == late.count)
            #expect(try await store.renew(late.map(\.repo.id), owner: "a", leaseDuration: .seconds(60)).isEmpty)

        case .aStaleWriteAfterARequeueIsRefused:
            // One instance (one owner), two workers: the first claim's write lands late, after the
            // repo was written, changed and claimed again by the same owner.
            let repos = try await loaded(store, 1)
            let early = try await claim(store, "a", lease: .milliseconds(200))
            try await Task.sleep(for: .milliseconds(300))
            let again = try await claim(store, "a")
            #expect(try await store.write([embedded(again[0], hash: "second")], owner: "a")[again[0].repo.id] == .applied)
            var changed = repos[0]
            changed.description = "changed after it was written"
            try await store.upsert([changed])
            let third = try await claim(store, "a")
            #expect(third.count == 1)
            let late = try await store.write([embedded(early[0], [0, 1, 0, 0], hash: "stale")], owner: "a")
            #expect(late[early[0].repo.id] != .applied, "\(check): a write from before the change must be refused, got \(String(describing: late[early[0].repo.id]))")
            // The refusal may end the lease; either way the changed repo is embedded in the end.
            if try await store.write([embedded(third[0], hash: "third")], owner: "a")[third[0].repo.id] != .applied {
                let fourth = try await claim(store, "a")
                #expect(try await store.write([embedded(fourth[0], hash: "third")], owner: "a")[fourth[0].repo.id] == .applied)
            }
            #expect(try await store.stats(model: model) == StoreStats(total: 1, embedded: 1, pending: 0, failed: 0, leased: 0))
            let hits = try await store.nearest(to: [1, 0, 0, 0], limit: 1, filter: SearchFilter())
            #expect(hits.first.map { $0.score > 0.99 } == true, "\(check): the stored vector is the current claim's, not the stale one")

        case .nearestKeepsToTheAskedModel:
            // During a model change two models' vectors of one dimension are stored side by side.
            _ = try await loaded(store, 12)
            let other = "conformance/other@4"
            // The other model's vectors all point at the query; the asked model's point elsewhere.
            let first = try await claim(store, "b", limit: 10, model: other)
            _ = try await store.write(first.map {
                RepoWrite(id: $0.repo.id, revision: $0.revision, model: other, change: .embedded(vector: [1, 0, 0, 0], contentHash: "o", generatedAt: Date()))
            }, owner: "b")
            // The asked model's instance starts after (the newest is served): the two new repos
            // come first; the other model's ten (stale for it) are left as they are.
            let leased = try await claim(store, "a")
            let claimed = leased.filter { !$0.stale }
            try await store.release(leased.filter(\.stale).map(\.repo.id), owner: "a")
            _ = try await store.write(zip(claimed, [[0.6, 0.8, 0, 0], [0, 1, 0, 0]] as [[Float]]).map { embedded($0, $1) }, owner: "a")
            let hits = try await store.nearest(to: [1, 0, 0, 0], limit: 2, filter: SearchFilter(model: model))
            #expect(hits.map(\.repo.id) == claimed.suffix(2).map(\.repo.id), "\(check): only the asked model's vectors, closest first")
            let any = try await store.nearest(to: [1, 0, 0, 0], limit: 3, filter: SearchFilter())
            #expect(any.count == 3 && any.allSatisfy { $0.score > 0.99 }, "\(check): without a model, every vector counts")

        case .scanSeesEveryRepoOnceWithItsState:
            // Pages smaller than the data, a page boundary on the last repo, states as stats counts them.
            let loadedAt = Date()
            let repos = try await loaded(store, 9)
            let claimed = try await claim(store, "a", limit: 5)
            _ = try await store.write([embedded(claimed[0], [0.6, 0.8, 0, 0], hash: "h0"), embedded(claimed[1])], owner: "a")
            _ = try await store.recordFailures([failure(claimed[2], permanent: true)], owner: "a", maxAttempts: 5)
            _ = try await store.recordFailures([failure(claimed[3])], owner: "a", maxAttempts: 5)
            var seen: [RepoID: StoredRepo] = [:]
            var pages = 0
            try await store.forEachPage(model: model, pageSize: 3) { page in
                pages += 1
                #expect(page.repos.count <= 3, "\(check): a page holds at most its limit")
                for stored in page.repos {
                    #expect(seen[stored.repo.id] == nil, "\(check): \(stored.repo.id) came twice")
                    seen[stored.repo.id] = stored
                }
            }
            #expect(Set(seen.keys) == Set(repos.map(\.id)), "\(check): every repo once")
            #expect(pages <= 4, "\(check): \(pages) pages of 3 for 9 repos")
            let first = seen[claimed[0].repo.id]
            #expect(first?.state == .embedded && first?.embedding == [0.6, 0.8, 0, 0] && first?.embeddingModel == model
                    && first?.embeddingHash == "h0" && first?.embeddingGeneratedAt != nil, "\(check): the vector and what made it")
            #expect(first?.repo.fullName == claimed[0].repo.fullName)
            let failed = seen[claimed[2].repo.id]
            #expect(failed?.state == .failed && failed?.lastError == "provider said no: ✗" && failed?.attempts == 1)
            let retrying = seen[claimed[3].repo.id]
            #expect(retrying?.state == .pending && retrying?.lastError == "provider said no: ✗" && retrying?.attempts == 1,
                    "\(check): a repo waiting to retry is pending with its error")
            #expect(seen.values.filter { $0.embedding == nil }.count == 7)
            // When a pending repo was queued, if the store records it: around the upsert; never for an embedded one.
            for stored in seen.values {
                if let since = stored.pendingSince {
                    #expect(stored.state == .pending && abs(since.timeIntervalSince(loadedAt)) < 60, "\(check): pending since \(since)")
                }
            }
            var counted = StoreStats(total: seen.count, embedded: 0, pending: 0, failed: 0, leased: 0)
            for stored in seen.values {
                switch stored.state {
                case .embedded: counted.embedded += 1
                case .pending: counted.pending += 1
                case .failed: counted.failed += 1
                }
            }
            var stats = try await store.stats(model: model)
            stats.leased = 0
            #expect(counted == stats, "\(check): a scan counts what stats counts")
            let other = try await store.scan(model: "conformance/other@4", after: nil, limit: 100)
            #expect(other.repos.first { $0.repo.id == claimed[0].repo.id }?.state == .pending, "\(check): another model's vector is pending")

        case .unicodeRoundTrips:
            let repo = Repo(id: RepoID("repo:conf-unicode"), fullName: "ünï/日本語-репо", description: "emoji 👍🏽, RTL שלום, combining é, NUL-free \u{2028}",
                            language: "C++", owner: Repo.Owner(login: "ünï"), topics: ["日本", "ß"])
            try await store.upsert([repo])
            let claimed = try await claim(store, "a")
            #expect(claimed.first?.repo.fullName == repo.fullName)
            #expect(claimed.first?.repo.description == repo.description)
            #expect(claimed.first?.repo.topics == repo.topics)
            #expect(claimed.first?.repo.owner?.login == repo.owner?.login)
        }
    }
}
