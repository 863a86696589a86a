import EmbedStarCore
import Foundation
import Testing

/// The operator's commands: requeue, find one repo, open without writing, the oldest pending repo.
extension StoreConformance {
    func requeueEmbedsNamedReposAgain(_ store: any RepoStore, _ check: StoreCheck) async throws {
        // Embedded, failed and leased repos, each named: all pending again, handed out with
        // no stored hash (so embedded again though unchanged) and no attempts.
        let repos = try await loaded(store, 4)
        let first = try await claim(store, "a", limit: 4)
        #expect(first.count == 4)
        let byID = Dictionary(uniqueKeysWithValues: first.map { ($0.repo.id, $0) })
        let (done, failing, leased) = (byID[repos[0].id]!, byID[repos[1].id]!, byID[repos[2].id]!)
        _ = try await store.write([embedded(done), embedded(byID[repos[3].id]!)], owner: "a")
        _ = try await store.recordFailures([failure(failing, permanent: true)], owner: "a", maxAttempts: 5)
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 4, embedded: 2, pending: 1, failed: 1, leased: 1))
        let queued = try await store.requeue([done.repo.id, failing.repo.id, leased.repo.id, RepoID("repo:conf-nowhere")])
        #expect(queued == 3, "\(check): three named repos exist, one name is unknown")
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 4, embedded: 1, pending: 3, failed: 0, leased: 0),
                "\(check): the named repos are pending and unleased; the unnamed one stays embedded")
        let again = try await claim(store, "b", limit: 10)
        #expect(Set(again.map(\.repo.id)) == [done.repo.id, failing.repo.id, leased.repo.id])
        #expect(again.allSatisfy { $0.embeddedHash == nil && $0.attempts == 0 && $0.requeued },
                "\(check): a requeued repo is handed out with no hash to vouch for it, no attempts, marked requeued")
        #expect(try await store.write([embedded(leased)], owner: "a")[leased.repo.id] != .applied,
                "\(check): the lease a requeue ended does not write")
        #expect(try await store.nearest(to: [1, 0, 0, 0], limit: 10, filter: SearchFilter(modelIdentity: model)).contains { $0.repo.id == done.repo.id },
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
    }

    func findNamesARepoByIdOrFullName(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 3)
        let byID = try await store.find(repos[0].id.rawValue, modelIdentity: model)
        #expect(byID.map(\.repo.id) == [repos[0].id] && byID.first?.state == .pending && byID.first?.leaseOwner == nil)
        let byName = try await store.find(repos[1].fullName.uppercased(), modelIdentity: model)
        #expect(byName.map(\.repo.id) == [repos[1].id], "\(check): owner/name is matched ignoring case")
        #expect(try await store.find("nobody/nothing", modelIdentity: model).isEmpty)
        #expect(try await store.find("repo:conf-nowhere", modelIdentity: model).isEmpty)
        let claimed = try await claim(store, "a", limit: 3)
        let leased = try await store.find(repos[2].id.rawValue, modelIdentity: model).first
        #expect(leased?.leaseOwner == "a" && (leased?.leaseExpires ?? .distantPast) > Date(), "\(check): the lease holder and its expiry")
        let byClaim = Dictionary(uniqueKeysWithValues: claimed.map { ($0.repo.id, $0) })
        _ = try await store.write([embedded(byClaim[repos[0].id]!, [0, 1, 0, 0], hash: "hash-0")], owner: "a")
        _ = try await store.recordFailures([failure(byClaim[repos[1].id]!)], owner: "a", maxAttempts: 5)
        let written = try await store.find(repos[0].id.rawValue, modelIdentity: model).first
        #expect(written?.state == .embedded && written?.embedding == [0, 1, 0, 0] && written?.embeddingHash == "hash-0"
                && written?.embeddingModel == model && written?.leaseOwner == nil, "\(check): an embedded repo with its vector, hash and model")
        let failed = try await store.find(repos[1].id.rawValue, modelIdentity: model).first
        #expect(failed?.state == .pending && failed?.attempts == 1 && failed?.lastError == "provider said no: ✗" && failed?.leaseOwner == nil,
                "\(check): a repo retrying with its attempts and last error")
    }

    func oldestPendingIsWhenTheLongestWaitingRepoWasQueued(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let loadedAt = Date()
        let repos = try await loaded(store, 3)
        let first = try await store.oldestPendingSince(modelIdentity: model)
        #expect(first.map { abs($0.timeIntervalSince(loadedAt)) < 5 } == true, "\(check): the repos were queued when loaded: \(String(describing: first))")
        let claimed = try await claim(store, "a")
        _ = try await store.write(claimed.map { embedded($0) }, owner: "a")
        #expect(try await store.oldestPendingSince(modelIdentity: model) == nil, "\(check): nothing is pending")
        try await Task.sleep(for: .milliseconds(1_100))
        let changedAt = Date()
        var changed = repos[1]
        changed.description = "changed after everything was embedded"
        try await store.upsert([changed])
        let second = try await store.oldestPendingSince(modelIdentity: model)
        #expect(second.map { $0.timeIntervalSince(changedAt) > -0.5 && $0.timeIntervalSince(changedAt) < 5 } == true,
                "\(check): the changed repo is pending since it changed, not since it was loaded: \(String(describing: second))")
        let again = try await claim(store, "a")
        _ = try await store.recordFailures(again.map { failure($0, permanent: true) }, owner: "a", maxAttempts: 5)
        #expect(try await store.oldestPendingSince(modelIdentity: model) == nil, "\(check): a failed repo is not pending")
        // Put back by retry-failed: pending since then, not since it changed.
        try await Task.sleep(for: .milliseconds(1_100))
        let resetAt = Date()
        #expect(try await store.resetFailed() == 1)
        let reset = try await store.oldestPendingSince(modelIdentity: model)
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
            stale = try await store.oldestPendingSince(modelIdentity: other)
        }
        #expect(stale.map { $0.timeIntervalSince(switchedAt) > -0.5 } == true,
                "\(check): repos another model embedded wait since this model was served: \(String(describing: stale))")
    }

    func openForReadingReadsTheSchema(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 2)
        let prepared = try await store.openForReading()
        #expect(prepared.version >= prepared.required && prepared.required > 0, "\(check): a prepared store is at its schema")
        _ = try await claim(store, "a", model: model)
        try await withSecond(store) { other in
            let schema = try await other.openForReading()
            #expect(schema.servedModelIdentity == model, "\(check): the model the store serves is read back")
            #expect(try await other.stats(modelIdentity: model).total == repos.count)
        }
    }
}
