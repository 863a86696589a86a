import Foundation

/// One claimed batch, decided as values: no I/O, no clock, no provider.
///
/// Claims and the cache go in; out come the provider requests to make. Their answers go in; out
/// come the writes, the failures and the releases to hand the store. The pipeline's batch step
/// (``Pipeline/embedClaimed(_:)``) only carries these between the provider and the store.
struct BatchPlan {
    /// What the plan needs to know about the run.
    struct Rules {
        var document: DocumentText
        var tokenCount: @Sendable (String) -> Int
        var modelIdentity: String
        /// `pipeline.retry_delay_ms`: the first wait of a failed repo, doubled per attempt.
        var retryDelay: Duration
    }

    private struct Work {
        var claim: ClaimedRepo
        var hash: String
    }

    private let rules: Rules
    /// Repos whose text and model made their stored vector: confirmed, no provider call.
    private var unchanged: [RepoWrite] = []
    /// Repos that cannot be embedded (their text is empty).
    private var refused: [RepoFailure] = []
    private var work: [Work] = []
    /// The distinct texts of the batch (the same text is embedded once, whichever repos share
    /// it), in the order first seen, with their hashes and answers.
    private(set) var texts: [String] = []
    private var hashes: [String] = []
    private var slotOfHash: [String: Int] = [:]
    private var answers: [Result<[Float], ItemProblem>?] = []
    /// Texts answered from the cache.
    private(set) var cacheHits = 0

    /// - Parameter cached: the vector the cache holds for a hash (same hash: same provider,
    ///   model, dimensions, prefixes and text), if any.
    init(_ claimed: [ClaimedRepo], rules: Rules, cached: (String) -> [Float]? = { _ in nil }) {
        self.rules = rules
        for claim in claimed {
            let text = rules.document.text(for: claim.repo, tokenCount: rules.tokenCount)
            let hash = rules.document.hash(text)
            if hash == claim.embeddedHash {
                unchanged.append(RepoWrite(id: claim.repo.id, revision: claim.revision, modelIdentity: rules.modelIdentity,
                                           change: .unchanged(contentHash: hash)))
            } else if text.isEmpty {
                refused.append(Self.failure(claim, "the text template gives an empty text", permanent: true, rules: rules))
            } else {
                work.append(Work(claim: claim, hash: hash))
                if slotOfHash[hash] == nil {
                    slotOfHash[hash] = texts.count
                    texts.append(text)
                    hashes.append(hash)
                    let vector = claim.requeued ? nil : cached(hash)
                    answers.append(vector.map { .success($0) })
                    if vector != nil { cacheHits += 1 }
                }
            }
        }
    }

    /// Slots of the texts still without an answer.
    var unanswered: [Int] { answers.indices.filter { answers[$0] == nil } }

    /// The provider requests still to make: slots of unanswered texts, split by count and by
    /// token budget (``Batcher``).
    func requests(maxCount: Int, maxTokens: Int?) -> [[Int]] {
        let missing = unanswered
        let costs = missing.map { rules.tokenCount(texts[$0]) }
        return Batcher.split(costs: costs, maxCount: maxCount, maxTokens: maxTokens).map { Array(missing[$0]) }
    }

    /// The hash of a slot's text (the cache's key).
    func hash(ofSlot slot: Int) -> String { hashes[slot] }

    /// Records the provider's answers for `slots`, in order.
    mutating func answer(_ slots: [Int], with results: [Result<[Float], ItemProblem>]) {
        for (slot, result) in zip(slots, results) { answers[slot] = result }
    }

    /// What to hand the store.
    struct Outcome {
        var writes: [RepoWrite] = []
        var failures: [RepoFailure] = []
        /// Back to the queue with no attempt counted.
        var released: [RepoID] = []
    }

    /// The writes, failures and releases; a text left without an answer is released.
    func outcome(generatedAt: Date) -> Outcome {
        var outcome = Outcome(writes: unchanged, failures: refused)
        for item in work {
            // Every work item's hash got a slot in `init`.
            switch answers[slotOfHash[item.hash]!] {
            case .success(let vector)?:
                outcome.writes.append(RepoWrite(id: item.claim.repo.id, revision: item.claim.revision, modelIdentity: rules.modelIdentity,
                                                change: .embedded(vector: vector, contentHash: item.hash, generatedAt: generatedAt)))
            case .failure(let problem)? where !problem.release:
                outcome.failures.append(Self.failure(item.claim, problem.reason, permanent: problem.permanent, rules: rules))
            case .failure?, nil:
                outcome.released.append(item.claim.repo.id)
            }
        }
        return outcome
    }

    /// A failed repo waits `retry_delay_ms` doubled per attempt before its next claim.
    static func failure(_ claim: ClaimedRepo, _ reason: String, permanent: Bool, rules: Rules) -> RepoFailure {
        let exponent = min(claim.attempts, 10)
        return RepoFailure(id: claim.repo.id, revision: claim.revision, reason: reason, permanent: permanent, retryAfter: rules.retryDelay * (1 << exponent))
    }
}

extension PipelineSummary {
    /// Counts what the store did with a batch's writes.
    mutating func count(_ writes: [RepoWrite], outcomes: [RepoID: WriteOutcome]) {
        for write in writes {
            switch outcomes[write.id] ?? .notFound {
            case .applied:
                if write.change.isEmbedding { embedded += 1 } else { unchanged += 1 }
            case .changedSinceClaim, .leaseLost:
                conflicts += 1
            case .notFound:
                break
            }
        }
    }

    /// Counts what the store did with a batch's failures.
    mutating func count(failures outcomes: [RepoID: FailureOutcome]) {
        for outcome in outcomes.values {
            switch outcome {
            case .failed: failed += 1
            case .willRetry: retrying += 1
            }
        }
    }
}
