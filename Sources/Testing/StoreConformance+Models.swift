import EmbedStarCore
import Foundation
import Testing

/// Models: another model's vectors are pending, stale repos last, the newest model served, coverage, search per model.
extension StoreConformance {
    func otherModelMakesRepoPending(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 1)
        let claimed = try await claim(store, "a")
        _ = try await store.write([embedded(claimed[0])], owner: "a")
        #expect(try await claim(store, "a").isEmpty)
        #expect(try await store.stats(modelIdentity: "conformance/other@4").pending == 1)
        let other = try await claim(store, "a", model: "conformance/other@4")
        #expect(other.count == 1, "\(check): a vector from another model must make the repo pending")
        #expect(other.first?.embeddedHash == nil, "\(check): another model's hash must not be offered")
    }

    func staleReposComeLastAndWithinTheirLimit(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 6)
        let first = try await claim(store, "a")
        _ = try await store.write(first.map { embedded($0) }, owner: "a")
        var changed = repos[4]
        changed.description = "changed after the model's vector"
        try await store.upsert([changed])
        // Another model now: five repos are stale, one is changed.
        let other = "conformance/other@4"
        let paced = try await store.claimPending(ClaimRequest(owner: "b", limit: 10, leaseDuration: .seconds(60), modelIdentity: other, staleLimit: 2))
        #expect(paced.count == 3, "\(check): the changed repo plus two stale ones, got \(paced.count)")
        #expect(paced.first?.repo.id == changed.id && paced.first?.stale == false, "\(check): a changed repo comes first and is not stale")
        let staleMarked = paced.dropFirst().allSatisfy { $0.stale }
        #expect(staleMarked, "\(check): repos only another model embedded are marked stale")
        let none = try await store.claimPending(ClaimRequest(owner: "b", limit: 10, leaseDuration: .seconds(60), modelIdentity: other, staleLimit: 0))
        #expect(none.isEmpty, "\(check): a stale limit of 0 holds every stale repo back")
        let rest = try await store.claimPending(ClaimRequest(owner: "b", limit: 10, leaseDuration: .seconds(60), modelIdentity: other))
        let restStale = rest.allSatisfy { $0.stale }
        #expect(rest.count == 3 && restStale, "\(check): no limit hands out the other three")
    }

    func newestModelIsServed(_ store: any RepoStore, _ check: StoreCheck) async throws {
        // A rolling deploy: owner "old" runs model A, then "new" starts with model B.
        _ = try await loaded(store, 4)
        let other = "conformance/other@4"
        // Far longer than the steps below take on a loaded machine (a 2.x dev server under
        // the other suites has taken over 5 s); the last claim asks with a short one instead.
        let live: Duration = .seconds(120), short: Duration = .seconds(1)
        func claimAs(_ owner: String, _ model: String, limit: Int = 2, liveness: Duration = live) async throws -> [ClaimedRepo] {
            try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: .seconds(60), modelIdentity: model, liveness: liveness))
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
    }

    func coverageCountsVectorsPerModel(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 5)
        #expect(try await store.coverage().isEmpty)
        let claimed = try await claim(store, "a", limit: 3)
        _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
        // An instance of another model starts (the newest is served) and embeds the rest.
        let other = "conformance/other@4"
        let rest = try await claim(store, "b", model: other).filter { !$0.stale }
        _ = try await store.write(rest.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: other, change: .embedded(vector: [0, 1, 0, 0], contentHash: "o", generatedAt: Date()))
        }, owner: "b")
        #expect(try await store.coverage() == [model: 3, other: 2], "\(check): vectors per model")
    }

    func nearestKeepsToTheAskedModel(_ store: any RepoStore, _ check: StoreCheck) async throws {
        // During a model change two models' vectors of one dimension are stored side by side.
        _ = try await loaded(store, 12)
        let other = "conformance/other@4"
        // The other model's vectors all point at the query; the asked model's point elsewhere.
        let first = try await claim(store, "b", limit: 10, model: other)
        _ = try await store.write(first.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: other, change: .embedded(vector: [1, 0, 0, 0], contentHash: "o", generatedAt: Date()))
        }, owner: "b")
        // The asked model's instance starts after (the newest is served): the two new repos
        // come first; the other model's ten (stale for it) are left as they are.
        let leased = try await claim(store, "a")
        let claimed = leased.filter { !$0.stale }
        try await store.release(leased.filter(\.stale).map(\.repo.id), owner: "a")
        _ = try await store.write(zip(claimed, [[0.6, 0.8, 0, 0], [0, 1, 0, 0]] as [[Float]]).map { embedded($0, $1) }, owner: "a")
        let hits = try await store.nearest(to: [1, 0, 0, 0], limit: 2, filter: SearchFilter(modelIdentity: model))
        #expect(hits.map(\.repo.id) == claimed.suffix(2).map(\.repo.id), "\(check): only the asked model's vectors, closest first")
        let any = try await store.nearest(to: [1, 0, 0, 0], limit: 3, filter: SearchFilter())
        #expect(any.count == 3 && any.allSatisfy { $0.score > 0.99 }, "\(check): without a model, every vector counts")
    }
}
