import EmbedStarCore
import Foundation
import Testing

/// Failures: attempts counted at the claimed revision, retry delays, failed repos that change.
extension StoreConformance {
    func failuresCountAttemptsAndMarkFailed(_ store: any RepoStore, _ check: StoreCheck) async throws {
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
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 2, embedded: 0, pending: 0, failed: 2, leased: 0))
        #expect(try await claim(store, "a").isEmpty, "\(check): a failed repo must leave the queue")
        let stranger = try await store.recordFailures([failure(claimed[0])], owner: "b", maxAttempts: 2)
        #expect(stranger.isEmpty, "\(check): a failure from an owner without the lease must be ignored")
        #expect(try await store.resetFailed() == 2)
        let back = try await claim(store, "a")
        #expect(back.count == 2 && back.allSatisfy { $0.attempts == 0 }, "\(check): retry-failed must clear the attempts")
    }

    func retryAfterKeepsARepoOutOfTheQueue(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 1)
        let claimed = try await claim(store, "a")
        _ = try await store.recordFailures([failure(claimed[0], retryAfter: .seconds(60))], owner: "a", maxAttempts: 5)
        #expect(try await claim(store, "a").isEmpty, "\(check): a repo waiting out retry_after was handed out")
        #expect(try await store.stats(modelIdentity: model).pending == 1)
    }

    func changedFailedRepoIsPendingAgain(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let repos = try await loaded(store, 1)
        let claimed = try await claim(store, "a")
        _ = try await store.recordFailures([failure(claimed[0], permanent: true)], owner: "a", maxAttempts: 5)
        #expect(try await store.stats(modelIdentity: model).failed == 1)
        var changed = repos[0]
        changed.description = "a new text deserves a new try"
        try await store.upsert([changed])
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 1, embedded: 0, pending: 1, failed: 0, leased: 0),
                "\(check): a failed repo whose text changed is pending again")
        let again = try await claim(store, "a")
        #expect(again.count == 1 && again.first?.attempts == 0, "\(check): with its attempts cleared")
    }

    func aFailureOfAnOlderTextOnlyEndsTheLease(_ store: any RepoStore, _ check: StoreCheck) async throws {
        // The provider rejects the text of a claim; the collector changes the repo before the
        // failure is recorded: the new text is pending at once, with no attempt counted.
        let repos = try await loaded(store, 1)
        let claimed = try await claim(store, "a")
        var changed = repos[0]
        changed.description = "rewritten while the old text was being rejected"
        try await store.upsert([changed])
        let outcomes = try await store.recordFailures([failure(claimed[0], permanent: true)], owner: "a", maxAttempts: 5)
        #expect(outcomes[claimed[0].repo.id] == nil, "\(check): a failure of an older text must not count")
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 1, embedded: 0, pending: 1, failed: 0, leased: 0),
                "\(check): the repo whose text changed is pending, not failed, and not leased")
        let again = try await claim(store, "b")
        #expect(again.count == 1 && again.first?.attempts == 0 && again.first?.repo.description == changed.description,
                "\(check): the new text is handed out at once, with no attempt counted")
    }
}
