import EmbedStarCore
import Foundation
import Testing

/// Claims and leases: one owner at a time, expiry, release, renewal, migrations run twice.
extension StoreConformance {
    func migrationsAreIdempotent(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 3)
        try await store.prepare()
        try await withSecond(store) { other in
            async let a: Void = store.prepare()
            async let b: Void = other.prepare()
            _ = try await (a, b)
        }
        #expect(try await store.stats(modelIdentity: model).total == repos.count, "\(check): a repeated prepare lost or duplicated repos")
    }

    func everyRepoStartsPending(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store)
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: repos.count, embedded: 0, pending: repos.count, failed: 0, leased: 0))
        let claimed = try await claim(store, "a")
        #expect(Set(claimed.map(\.repo.id)) == Set(repos.map(\.id)), "\(check): a claim must hand out every pending repo")
        #expect(claimed.allSatisfy { $0.attempts == 0 && $0.embeddedHash == nil })
        #expect(try await store.stats(modelIdentity: model).leased == repos.count)
    }

    func twoClaimersNeverGetTheSameRepo(_ store: any RepoStore, _ check: StoreCheck) async throws {
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
    }

    func liveLeaseIsNotHandedOut(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 3)
        #expect(try await claim(store, "a").count == repos.count)
        #expect(try await claim(store, "b").isEmpty, "\(check): a leased repo was handed to another owner")
        #expect(try await claim(store, "a").isEmpty, "\(check): a leased repo was handed out twice to its owner")
    }

    func expiredLeaseIsTakenOver(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 3)
        let first = try await claim(store, "a", lease: .milliseconds(200))
        try await Task.sleep(for: .milliseconds(1200))  // stores may keep time in whole seconds
        let second = try await claim(store, "b")
        #expect(Set(second.map(\.repo.id)) == Set(first.map(\.repo.id)), "\(check): an expired lease must be claimable")
        let late = try await store.write([embedded(first[0])], owner: "a")
        #expect(late[first[0].repo.id] == .leaseLost, "\(check): the old owner's write must be refused")
        let current = try await store.write([embedded(second[0])], owner: "b")
        #expect(current[second[0].repo.id] == .applied)
    }

    func releaseReturnsReposAtOnce(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 4)
        let claimed = try await claim(store, "a")
        try await store.release(claimed.map(\.repo.id), owner: "b")
        #expect(try await claim(store, "c").isEmpty, "\(check): a release by another owner must change nothing")
        try await store.release(claimed.map(\.repo.id), owner: "a")
        let again = try await claim(store, "c")
        #expect(again.count == 4 && again.allSatisfy { $0.attempts == 0 }, "\(check): a release must not count an attempt")
    }

    func releaseAllSparesWhatIsInFlight(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 5)
        let claimed = try await claim(store, "a")
        #expect(try await store.releaseAll(owner: "b", except: []) == 0)
        #expect(try await store.releaseAll(owner: "a", except: [claimed[0].repo.id]) == 4)
        let again = try await claim(store, "c")
        #expect(Set(again.map(\.repo.id)) == Set(claimed.dropFirst().map(\.repo.id)))
    }

    func renewKeepsALeaseAlive(_ store: any RepoStore, _ check: StoreCheck) async throws {
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
    }

    /// The store's idle work, with repos pending and with none: counts, claims and search stay
    /// as they were.
    func maintainChangesNothingAClaimSees(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 4)
        let first = try await claim(store, "a", limit: 2)
        _ = try await store.write(first.map { embedded($0) }, owner: "a")
        let before = try await store.stats(modelIdentity: model)
        try await store.maintain(owner: "a", modelIdentity: model)
        #expect(try await store.stats(modelIdentity: model) == before, "\(check): maintenance changed the counts")
        let rest = try await claim(store, "b", limit: 10)
        #expect(Set(rest.map(\.repo.id)) == Set(repos.map(\.id)).subtracting(first.map(\.repo.id)),
                "\(check): the repos pending before maintenance are claimable after it")
        _ = try await store.write(rest.map { embedded($0) }, owner: "b")
        try await store.maintain(owner: "b", modelIdentity: model)
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 4, embedded: 4, pending: 0, failed: 0, leased: 0))
        #expect(try await claim(store, "b").isEmpty)
        let hits = try await store.nearest(to: [1, 0, 0, 0], limit: 10, filter: SearchFilter(modelIdentity: model))
        #expect(hits.count == 4, "\(check): every vector is found after maintenance: \(hits.count)")
    }
}
