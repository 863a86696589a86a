import Foundation

/// One claimed batch, decided as values: no I/O, no clock, no provider.
///
/// Claims go in, then what the cache holds for them; out come the provider requests to make
/// (texts with their token costs). Their answers go in; out come the vectors to cache, and the
/// writes, the failures and the releases to hand the store. The pipeline's batch step
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
    /// Each text's cost in tokens, measured once when it was built.
    private(set) var tokens: [Int] = []
    private var hashes: [String] = []
    private var slotOfHash: [String: Int] = [:]
    private var answers: [Result<[Float], ItemProblem>?] = []
    /// Texts answered from the cache.
    private(set) var cacheHits = 0

    init(_ claimed: [ClaimedRepo], rules: Rules) {
        self.rules = rules
        for claim in claimed {
            let (text, cost) = rules.document.measuredText(for: claim.repo, tokenCount: rules.tokenCount)
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
                    tokens.append(cost)
                    hashes.append(hash)
                    requeued.append(claim.requeued)
                    answers.append(nil)
                } else if claim.requeued {
                    requeued[slotOfHash[hash]!] = true
                }
            }
        }
    }

    /// Slots whose text a requeued repo shares: asked of the provider, never the cache.
    private var requeued: [Bool] = []

    /// Answers the texts the cache holds (same hash: same provider, model, dimensions,
    /// prefixes and text), except those of requeued repos; returns how many it answered.
    mutating func answerFromCache(_ cached: (String) -> [Float]?) -> Int {
        for slot in unanswered where !requeued[slot] {
            if let vector = cached(hashes[slot]) {
                answers[slot] = .success(vector)
                cacheHits += 1
            }
        }
        return cacheHits
    }

    /// Slots of the texts still without an answer.
    var unanswered: [Int] { answers.indices.filter { answers[$0] == nil } }

    /// The provider requests still to make: slots of unanswered texts, split by count and by
    /// token budget (``Batcher``).
    func requests(maxCount: Int, maxTokens: Int?) -> [[Int]] {
        let missing = unanswered
        return Batcher.split(costs: missing.map { tokens[$0] }, maxCount: maxCount, maxTokens: maxTokens).map { Array(missing[$0]) }
    }

    /// Records the provider's answers for `slots`, in order; returns the new vectors by hash,
    /// for the cache.
    mutating func answer(_ slots: [Int], with results: [Result<[Float], ItemProblem>]) -> [(hash: String, vector: [Float])] {
        var fresh: [(hash: String, vector: [Float])] = []
        for (slot, result) in zip(slots, results) {
            answers[slot] = result
            if case .success(let vector) = result { fresh.append((hashes[slot], vector)) }
        }
        return fresh
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
        failure(claim.repo.id, revision: claim.revision, attempts: claim.attempts, reason, permanent: permanent, rules: rules)
    }

    /// The same for a repo known by its id, revision and attempts so far (a batch job's item).
    static func failure(_ id: RepoID, revision: String, attempts: Int, _ reason: String, permanent: Bool, rules: Rules) -> RepoFailure {
        RepoFailure(id: id, revision: revision, reason: reason, permanent: permanent, retryAfter: rules.retryDelay * (1 << min(attempts, 10)))
    }

    /// What is settled without the provider: the unchanged repos' confirmations and the
    /// refused repos' failures.
    var settled: (writes: [RepoWrite], failures: [RepoFailure]) { (unchanged, refused) }

    /// The repos that need the provider, each with its text's hash and the slot of its text in
    /// ``texts`` (repos with the same text share a slot).
    var slots: [(claim: ClaimedRepo, hash: String, slot: Int)] {
        work.map { ($0.claim, $0.hash, slotOfHash[$0.hash]!) }  // every work item's hash got a slot in `init`
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
