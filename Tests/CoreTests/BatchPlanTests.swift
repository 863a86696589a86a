@testable import EmbedStarCore
import Foundation
import Synchronization
import Testing

/// The batch step's decisions as values: no store, no provider, no clock.
@Suite struct BatchPlanTests {
    let model = ModelInfo(name: "m", dimensions: 2, maxBatchSize: 10)

    /// The text is the description alone, so a repo without one has an empty text.
    func rules() throws -> BatchPlan.Rules {
        var text = TextConfiguration()
        text.template = "{description}"
        return BatchPlan.Rules(document: try DocumentText(providerName: "mock", model: model, text: text),
                               tokenCount: { $0.count }, modelIdentity: "mock/m@2", retryDelay: .seconds(1))
    }

    func claim(_ id: String, _ description: String?, embeddedHash: String? = nil, attempts: Int = 0) -> ClaimedRepo {
        ClaimedRepo(repo: Repo(id: RepoID("repo:\(id)"), fullName: "o/\(id)", description: description),
                    revision: "r-\(id)", embeddedHash: embeddedHash, attempts: attempts)
    }

    /// A repo named by `requeue` is asked of the provider even when the cache holds a vector
    /// for its text: requeueing a wrong vector must not write it back from the cache.
    @Test func aRequeuedRepoSkipsTheCache() throws {
        let rules = try rules()
        var requeued = claim("r", "cached text")
        requeued.requeued = true
        let hash = rules.document.hash(rules.document.text(for: requeued.repo))
        var plan = BatchPlan([requeued], rules: rules)
        #expect(plan.answerFromCache { $0 == hash ? [1, 0] : nil } == 0 && plan.unanswered.count == 1)
        var plain = BatchPlan([claim("r", "cached text")], rules: rules)
        #expect(plain.answerFromCache { $0 == hash ? [1, 0] : nil } == 1 && plain.unanswered.isEmpty)
        // A requeued repo that shares its text with another one in the batch: still not cached.
        var shared = BatchPlan([claim("s", "cached text"), requeued], rules: rules)
        #expect(shared.answerFromCache { $0 == hash ? [1, 0] : nil } == 0)
    }

    /// A text is measured once: the cut measures it, and the batching and the rate limiter use
    /// that figure (they counted it again each, three counts per text).
    @Test func eachTextIsCountedOnceAndItsCostComesWithIt() throws {
        let counted = Mutex(0)
        var rules = try rules()
        rules.tokenCount = { text in
            counted.withLock { $0 += 1 }
            return TokenEstimator.estimate(text)
        }
        let claims = (0..<6).map { claim("\($0)", "text number \($0)") }
        let plan = BatchPlan(claims, rules: rules)
        #expect(counted.withLock { $0 } == 6)
        #expect(plan.tokens == plan.texts.map(TokenEstimator.estimate))
        _ = plan.requests(maxCount: 2, maxTokens: 100)
        #expect(counted.withLock { $0 } == 6)
    }

    @Test func unchangedEmptyDuplicateAndCachedTextsNeedNoRequest() throws {
        let rules = try rules()
        let unchangedHash = rules.document.hash(rules.document.text(for: claim("a", "same").repo))
        let cachedHash = rules.document.hash(rules.document.text(for: claim("e", "cached").repo))
        var plan = BatchPlan([
            claim("a", "same", embeddedHash: unchangedHash),
            claim("b", nil),
            claim("c", "shared"),
            claim("d", "shared"),
            claim("e", "cached"),
            claim("f", "new"),
        ], rules: rules)
        #expect(plan.answerFromCache { $0 == cachedHash ? [1, 0] : nil } == 1)
        #expect(plan.texts == ["shared", "cached", "new"], "one slot per distinct text")
        #expect(plan.cacheHits == 1)
        #expect(plan.requests(maxCount: 10, maxTokens: nil) == [[0, 2]])

        let outcome = plan.outcome(generatedAt: Date(timeIntervalSince1970: 0))
        #expect(outcome.writes.map(\.id.rawValue) == ["repo:a", "repo:e"], "the unchanged one, and the cached one")
        guard case .unchanged = outcome.writes[0].change, case .embedded = outcome.writes[1].change else {
            Issue.record("wrong changes: \(outcome.writes.map(\.change))")
            return
        }
        #expect(outcome.failures.map(\.id.rawValue) == ["repo:b"])
        #expect(outcome.failures[0].permanent)
        #expect(outcome.released.map(\.rawValue) == ["repo:c", "repo:d", "repo:f"], "unanswered texts go back to the queue")
    }

    @Test func requestsAreSplitByCountAndTokens() throws {
        let claims = (0..<5).map { claim("\($0)", String(repeating: "x", count: 10 + $0)) }
        let plan = BatchPlan(claims, rules: try rules())
        #expect(plan.requests(maxCount: 2, maxTokens: nil) == [[0, 1], [2, 3], [4]])
        #expect(plan.requests(maxCount: 10, maxTokens: 20) == [[0], [1], [2], [3], [4]])
    }

    @Test func answersBecomeWritesFailuresAndReleases() throws {
        var plan = BatchPlan([
            claim("a", "one"), claim("b", "two", attempts: 3), claim("c", "three"), claim("d", "one"),
        ], rules: try rules())
        let fresh = plan.answer([0, 1, 2], with: [
            .success([0.6, 0.8]),
            .failure(ItemProblem(reason: "rejected", permanent: false)),
            .failure(ItemProblem(reason: "slow down", permanent: false, release: true)),
        ])
        let outcome = plan.outcome(generatedAt: Date(timeIntervalSince1970: 0))
        #expect(outcome.writes.map(\.id.rawValue) == ["repo:a", "repo:d"], "both repos of the shared text")
        #expect(outcome.failures.map(\.id.rawValue) == ["repo:b"])
        #expect(outcome.failures[0].retryAfter == .seconds(8), "retry_delay doubled per attempt so far")
        #expect(outcome.released.map(\.rawValue) == ["repo:c"])
        #expect(fresh.map(\.vector) == [[0.6, 0.8]], "only vectors go to the cache")
        #expect(fresh.first?.hash == (try rules()).document.hash("one"))
    }

    @Test func theSummaryCountsWhatTheStoreDid() {
        let writes = [
            RepoWrite(id: RepoID("repo:a"), revision: "1", modelIdentity: "m", change: .embedded(vector: [1], contentHash: "h", generatedAt: Date())),
            RepoWrite(id: RepoID("repo:b"), revision: "1", modelIdentity: "m", change: .unchanged(contentHash: "h")),
            RepoWrite(id: RepoID("repo:c"), revision: "1", modelIdentity: "m", change: .unchanged(contentHash: "h")),
            RepoWrite(id: RepoID("repo:d"), revision: "1", modelIdentity: "m", change: .unchanged(contentHash: "h")),
        ]
        var summary = PipelineSummary()
        summary.count(writes, outcomes: [RepoID("repo:a"): .applied, RepoID("repo:b"): .applied, RepoID("repo:c"): .leaseLost])
        summary.count(failures: [RepoID("repo:x"): .failed(attempts: 5), RepoID("repo:y"): .willRetry(attempts: 1)])
        #expect(summary.embedded == 1 && summary.unchanged == 1 && summary.conflicts == 1)
        #expect(summary.failed == 1 && summary.retrying == 1)
    }
}
