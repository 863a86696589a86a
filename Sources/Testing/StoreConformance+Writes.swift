import EmbedStarCore
import Foundation
import Testing

/// Conditional writes and the collector's upsert: revisions, missing repos, unchanged texts, unicode.
extension StoreConformance {
    func conditionalWriteRejectsAChangedRepo(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 2)
        let claimed = try await claim(store, "a")
        var changed = claimed[0].repo
        changed.description = "changed while it was being embedded"
        try await store.upsert([changed])
        let outcomes = try await store.write(claimed.map { embedded($0) }, owner: "a")
        #expect(outcomes[changed.id] == .changedSinceClaim, "\(check): a write over a changed repo must be refused")
        #expect(outcomes[claimed[1].repo.id] == .applied)
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 2, embedded: 1, pending: 1, failed: 0, leased: 0))
        let again = try await claim(store, "b")
        #expect(again.map(\.repo.id) == [changed.id])
        #expect(again.first?.repo.description == changed.description)
    }

    func writeOfAMissingRepoIsNotFound(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 1)
        let claimed = try await claim(store, "a")
        var ghost = embedded(claimed[0])
        ghost.id = RepoID("repo:conformance-missing")
        let outcomes = try await store.write([ghost], owner: "a")
        #expect(outcomes[ghost.id] == .notFound)
    }

    func unchangedWriteKeepsTheVector(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 1)
        var claimed = try await claim(store, "a")
        _ = try await store.write([embedded(claimed[0], [0, 1, 0, 0], hash: "same")], owner: "a")
        var touched = claimed[0].repo
        touched.updatedAt = Date(timeIntervalSince1970: 1_700_000_000)
        try await store.upsert([touched])
        claimed = try await claim(store, "a")
        #expect(claimed.count == 1, "\(check): a changed record must be pending again")
        #expect(claimed.first?.embeddedHash == "same", "\(check): the claim must carry the stored hash")
        let outcome = try await store.write([RepoWrite(id: touched.id, revision: claimed[0].revision, modelIdentity: model, change: .unchanged(contentHash: "same"))], owner: "a")
        #expect(outcome[touched.id] == .applied)
        #expect(try await claim(store, "a").isEmpty)
        let hits = try await store.nearest(to: [0, 1, 0, 0], limit: 1, filter: SearchFilter())
        #expect(hits.first?.repo.id == touched.id, "\(check): an unchanged write must keep the vector")
    }

    func aStaleWriteAfterARequeueIsRefused(_ store: any RepoStore, _ check: StoreCheck) async throws {
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
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 1, embedded: 1, pending: 0, failed: 0, leased: 0))
        let hits = try await store.nearest(to: [1, 0, 0, 0], limit: 1, filter: SearchFilter())
        #expect(hits.first.map { $0.score > 0.99 } == true, "\(check): the stored vector is the current claim's, not the stale one")
    }

    func upsertOnlyChangesWhatChanged(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 3)
        let claimed = try await claim(store, "a")
        _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
        try await store.upsert(repos)
        #expect(try await store.stats(modelIdentity: model).pending == 0, "\(check): an identical record must not become pending")
        var changed = repos[1]
        changed.topics = ["new-topic"]
        let added = Repo(id: RepoID("repo:conf-new"), fullName: "new/one")
        try await store.upsert([changed, added])
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 4, embedded: 2, pending: 2, failed: 0, leased: 0))
        let pending = Set(try await claim(store, "a").map(\.repo.id))
        #expect(pending == [changed.id, added.id], "\(check): exactly the changed and the new repo must be pending")
    }

    func unicodeRoundTrips(_ store: any RepoStore, _ check: StoreCheck) async throws {
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
