import EmbedStarCore
import EmbedStarTesting
import Foundation
import Synchronization
import Testing

/// The protection around a provider, with no pipeline and no store: each answer is scripted.
@Suite struct ProtectedProviderTests {
    /// Answers each call with the next scripted outcome (then with vectors), recording what it got.
    final class Scripted: EmbeddingProvider {
        enum Outcome { case vectors, fail(EmbeddingError), nan(at: Int), size(Int) }
        let script: Mutex<[Outcome]>
        let received = Mutex<[[String]]>([])
        let model = ModelInfo(name: "scripted", dimensions: 4, maxBatchSize: 100)

        init(_ script: [Outcome] = []) { self.script = Mutex(script) }

        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
            received.withLock { $0.append(texts) }
            // Texts holding "poison" are rejected by index, as a backend that names them does.
            let poisoned = texts.indices.filter { texts[$0].contains("poison") }
            if !poisoned.isEmpty { throw EmbeddingError(.invalidInput(indices: poisoned), "bad input") }
            let next = script.withLock { $0.isEmpty ? Outcome.vectors : $0.removeFirst() }
            var vectors = texts.map { text in [Float(text.count), 1, 2, 3] }
            switch next {
            case .vectors: break
            case .fail(let error): throw error
            case .nan(let index): vectors[index][0] = .nan
            case .size(let size): vectors = texts.map { _ in [Float](repeating: 1, count: size) }
            }
            return vectors
        }

        func health() async -> ComponentHealth { .up }
        var calls: Int { received.withLock { $0.count } }
    }

    func protect(_ base: Scripted, _ clock: ManualClock = ManualClock(), configure: (inout ResilienceConfiguration) -> Void = { _ in }) -> ProtectedProvider {
        var resilience = ResilienceConfiguration()
        resilience.retry.maxAttempts = 3
        resilience.circuitBreaker.failureThreshold = 2
        resilience.circuitBreaker.openSeconds = 30
        configure(&resilience)
        return ProtectedProvider(base, name: "scripted", resilience: resilience, clock: clock)
    }

    @Test func rejectedInputsAreIsolatedAndTheRestEmbedded() async throws {
        let base = Scripted()
        let provider = protect(base)
        let answers = try await provider.embedEach(["a", "poison one", "bb", "poison two", "ccc"])
        let vectors = answers.results.map { try? $0.get() }
        #expect(vectors.map { $0?.first } == [1, nil, 2, nil, 3])
        for index in [1, 3] {
            guard case .failure(let problem) = answers.results[index] else { Issue.record("text \(index) was embedded"); continue }
            #expect(problem.reason.contains("rejected by the provider") && !problem.release)
        }
        #expect(answers.calls.requests == 2, "the batch, then the three good texts")
        #expect(answers.calls.texts == 8)
        #expect(provider.breaker.current == .closed, "rejected inputs are not failures of the circuit")
    }

    @Test func transientFailuresAreRetriedOnTheClockThenAnswered() async throws {
        let clock = ManualClock()
        let base = Scripted([.fail(EmbeddingError(.retryable, "503")), .fail(EmbeddingError(.retryable, "503"))])
        let provider = protect(base, clock) { $0.circuitBreaker.failureThreshold = 5 }
        let vectors = try await provider.embed(["a", "bb"], mode: .document)
        #expect(vectors.count == 2)
        #expect(base.calls == 3)
        #expect(clock.slept.count == 2, "one backoff after each failure, on the injected clock")
    }

    @Test func anOpenCircuitHandsTextsBackWithoutCallingTheProvider() async throws {
        let clock = ManualClock()
        let down = EmbeddingError(.retryable, "503")
        let base = Scripted(Array(repeating: .fail(down), count: 10))
        let provider = protect(base, clock) { $0.retry.maxAttempts = 2 }
        let first = try await provider.embedEach(["a", "b"])
        #expect(first.results.allSatisfy { if case .failure(let p) = $0 { !p.release } else { false } }, "a failure counts against the texts")
        guard case .open = provider.breaker.current else { Issue.record("the circuit did not open"); return }
        let callsWhenOpen = base.calls
        let second = try await provider.embedEach(["a", "b"])
        #expect(base.calls == callsWhenOpen, "no call while open")
        #expect(second.calls.requests == 0)
        #expect(second.results.allSatisfy { if case .failure(let p) = $0 { p.release } else { false } }, "handed back, no attempt counted")
    }

    @Test func aRetryAfterIsWaitedExactlyAndIsNoFailure() async throws {
        let clock = ManualClock()
        let base = Scripted([.fail(EmbeddingError(.rateLimited(retryAfter: .seconds(7)), "429"))])
        let provider = protect(base, clock)
        let vectors = try await provider.embed(["a"], mode: .document)
        #expect(vectors.count == 1)
        #expect(clock.slept.contains(.seconds(7)))
        #expect(clock.now() >= .seconds(7))
        #expect(provider.breaker.current == .closed)
    }

    @Test func anInvalidVectorFailsItsTextAlone() async throws {
        let provider = protect(Scripted([.nan(at: 1)]))
        let answers = try await provider.embedEach(["a", "bb", "ccc"])
        #expect((try? answers.results[0].get()) != nil)
        #expect((try? answers.results[2].get()) != nil)
        guard case .failure(let problem) = answers.results[1] else { Issue.record("a NaN vector was accepted"); return }
        #expect(problem.reason.contains("NaN"))
        await #expect(throws: EmbeddingError.self, "the protocol's embed answers all or nothing") {
            _ = try await protect(Scripted([.nan(at: 0)])).embed(["a"], mode: .document)
        }
    }

    @Test func vectorsOfAnotherSizeEndTheRunWithOneMessage() async throws {
        let provider = protect(Scripted([.size(3)]))
        let error = await #expect(throws: EmbeddingError.self) { try await provider.embedEach(["a", "bb"]) }
        #expect(error?.kind == .fatal)
        #expect(error?.message.contains("2 vectors of 3 dimensions, but the model scripted of scripted makes 4") == true)
    }

    @Test func aProviderDownAtStartIsAskedAgainUntilTheDeadline() async throws {
        final class Late: EmbeddingProvider {
            let refusals = Mutex(2)
            let model = ModelInfo(name: "late", maxBatchSize: 10)
            func prepare() async throws -> ModelInfo {
                if refusals.withLock({ r in defer { r -= 1 }; return r > 0 }) { throw EmbeddingError(.retryable, "connection refused") }
                return ModelInfo(name: "late", dimensions: 8, maxBatchSize: 10)
            }
            func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] { [] }
            func health() async -> ComponentHealth { .up }
        }
        let clock = ManualClock()
        let provider = ProtectedProvider(Late(), name: "late", clock: clock)
        #expect(try await provider.prepare(retryingFor: .seconds(60)).dimensions == 8)
        #expect(provider.dimensions == 8)
        #expect(clock.slept.count == 2)

        let never = ProtectedProvider(Late(), name: "late", clock: ManualClock())
        await #expect(throws: EmbeddingError.self) { _ = try await never.prepare(retryingFor: .milliseconds(100)) }
    }
}
