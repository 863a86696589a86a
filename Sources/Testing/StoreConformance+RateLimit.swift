import EmbedStarCore
import Foundation
import Testing

/// The provider account's rate limits shared by the instances (``RepoStore/shareRateLimit(_:)``).
extension StoreConformance {
    func rateLimitsAreSharedByTheActiveInstances(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let account = "conformance/account"
        func report(_ owner: String, active: Bool = true, for time: Duration = .seconds(60), pause: Duration = .zero,
                    requests: Int? = nil, tokens: Int? = nil, age: Duration = .zero, account: String = account) -> RateLimitReport {
            RateLimitReport(account: account, owner: owner, active: active, activeFor: time, pausedFor: pause, requestsLimit: requests,
                            tokensLimit: tokens, limitsAge: age)
        }
        guard store.sharesRateLimits else {
            // Sharing nothing: every instance is alone with what it reported.
            let alone = report("a", pause: .seconds(2), requests: 10)
            #expect(try await store.shareRateLimit(alone) == .alone(alone), "\(check): a store that does not share answers alone")
            return
        }
        try await withSecond(store) { other in
            #expect(try await store.shareRateLimit(report("a")).others == 0, "\(check): the first instance is alone")
            #expect(try await other.shareRateLimit(report("b")).others == 1, "\(check): the second sees the first")
            #expect(try await store.shareRateLimit(report("a")).others == 1, "\(check): the first sees the second")
            // An instance whose report runs out stops counting.
            #expect(try await other.shareRateLimit(report("c", for: .milliseconds(300))).others == 2)
            try await Task.sleep(for: .seconds(1))
            #expect(try await store.shareRateLimit(report("a")).others == 1, "\(check): a report that ran out no longer counts")
            // An idle instance stops counting at once.
            #expect(try await other.shareRateLimit(report("b", active: false)).others == 1, "\(check): an idle instance still sees the active ones")
            #expect(try await store.shareRateLimit(report("a")).others == 0, "\(check): an instance reported idle does not count")
            // A pause reaches the others, on the store's clock; the longest pause of any instance
            // holds, and each instance's own pause is what it reported last (never pushed later
            // by the others' reports).
            // (Pauses of a minute and 20 s: the checks allow a step 5 s (b's own answer) to 30 s
            // (a's answer after b's), and 10 s for the last, on a loaded machine.)
            let paused = try await other.shareRateLimit(report("b", pause: .seconds(60)))
            #expect(paused.pausedFor > .seconds(55) && paused.pausedFor <= .seconds(60), "\(check): \(paused.pausedFor)")
            let seen = try await store.shareRateLimit(report("a", pause: .seconds(1)))
            #expect(seen.pausedFor > .seconds(30) && seen.pausedFor <= .seconds(60),
                    "\(check): the fleet's pause reaches every instance and a shorter one does not cut it (\(seen.pausedFor))")
            for _ in 0..<5 { _ = try await store.shareRateLimit(report("a")) }
            let again = try await other.shareRateLimit(report("b", pause: .seconds(20)))
            #expect(again.pausedFor <= .seconds(20), "\(check): reports do not push a pause later (\(again.pausedFor))")
            #expect(try await store.shareRateLimit(report("a")).pausedFor > .seconds(10), "\(check): b's own pause, as it said last")
            _ = try await other.shareRateLimit(report("b"))
            #expect(try await store.shareRateLimit(report("a")).pausedFor == .zero, "\(check): b's pause is over when it says so")
            // Limits one instance learned from the headers reach the others; the freshest wins
            // (an account's limits can rise), not the latest report of an old value.
            _ = try await other.shareRateLimit(report("b", requests: 3_000, tokens: 1_000_000))
            let learned = try await store.shareRateLimit(report("a"))
            #expect(learned.requestsLimit == 3_000 && learned.tokensLimit == 1_000_000, "\(check): \(learned)")
            _ = try await store.shareRateLimit(report("a", requests: 5_000, tokens: 2_000_000))
            #expect(try await other.shareRateLimit(report("b", requests: 3_000, tokens: 1_000_000, age: .seconds(60))).requestsLimit == 5_000,
                    "\(check): b still reports what it saw a minute ago; a saw the raised limit since")
            // Another account shares nothing with this one.
            let elsewhere = try await store.shareRateLimit(report("a", account: "conformance/other"))
            #expect(elsewhere == RateLimitShare(others: 0), "\(check): accounts are separate (\(elsewhere))")
        }
    }
}

/// `backfill --batch-api`'s jobs (``RepoStore/saveBatchJob(_:)``).
extension StoreConformance {
    func batchJobsOutliveTheirProcess(_ store: any RepoStore, _ check: StoreCheck) async throws {
        let items = (0..<3).map { BatchJob.Item(repo: RepoID("repo:conf-batch\($0)"), revision: "\($0 + 1)", hash: "h\($0)", request: "t\($0)", attempts: $0) }
        let first = BatchJob(id: "job-1", owner: "batch-a", modelIdentity: model, items: items,
                             createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        var second = BatchJob(id: "job-2", owner: "batch-b", modelIdentity: model, items: [items[0]],
                              createdAt: Date(timeIntervalSince1970: 1_800_000_100))
        do {
            try await store.saveBatchJob(second)
        } catch is BatchJobsUnsupported {
            #expect(try await store.batchJobs().isEmpty, "\(check): a store without batch jobs keeps none")
            return
        }
        try await store.saveBatchJob(first)
        try await withSecond(store) { other in
            #expect(try await other.batchJobs() == [first, second], "\(check): every job, oldest first, to another instance")
            second.batchID = "batch_42"
            try await other.saveBatchJob(second)
            #expect(try await store.batchJobs().last?.batchID == "batch_42", "\(check): saved again, replaced")
            try await store.removeBatchJob("job-1")
            try await store.removeBatchJob("job-unknown")
            #expect(try await other.batchJobs() == [second], "\(check): removed")
        }
    }
}
