import EmbedStarConfig
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarTesting
import Foundation
import Synchronization
import Testing

@Suite struct MockProviderTests {
    func provider(_ yaml: String = "{}") throws -> MockProvider {
        let node = try ConfigNode.parse(yaml: yaml, source: "test.yaml")
        return MockProvider(configuration: try ConfigDecoder().decode(MockProvider.Configuration.self, from: node, path: "providers.mock"))
    }

    @Test func vectorsAreDeterministicNormalizedAndDistinct() async throws {
        let mock = try provider("dimensions: 64")
        let first = try await mock.embed(["hello world", "goodbye"], mode: .document)
        let again = try await mock.embed(["hello world", "goodbye"], mode: .document)
        #expect(first == again)
        #expect(first[0] != first[1])
        for vector in first {
            #expect(vector.count == 64)
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
        }
        #expect(first[0] == MockProvider.vector(for: "hello world", dimensions: 64))
    }

    @Test func sharedWordsMakeVectorsCloser() {
        func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let toml = MockProvider.vector(for: "a fast toml parser for rust", dimensions: 384)
        let toml2 = MockProvider.vector(for: "toml parser written in rust", dimensions: 384)
        let game = MockProvider.vector(for: "a 2d game engine with physics", dimensions: 384)
        #expect(cosine(toml, toml2) > cosine(toml, game))
    }

    @Test func failureInjection() async throws {
        await #expect(throws: EmbeddingError.self) { try await provider("error_rate: 1").embed(["a"], mode: .document) }
        do {
            _ = try await provider("rate_limit_rate: 1\nretry_after_ms: 250").embed(["a"], mode: .document)
            Issue.record("expected a rate limit")
        } catch let error as EmbeddingError {
            #expect(error.kind == .rateLimited(retryAfter: .milliseconds(250)))
        }
        do {
            _ = try await provider("reject_texts_containing: [bad]").embed(["ok", "so bad", "fine"], mode: .document)
            Issue.record("expected a rejection")
        } catch let error as EmbeddingError {
            #expect(error.kind == .invalidInput(indices: [1]))
        }
        let nan = try await provider("nan_rate: 1").embed(["a"], mode: .document)
        #expect(nan[0][0].isNaN)
        let short = try await provider("wrong_dimension_rate: 1\ndimensions: 10").embed(["a"], mode: .document)
        #expect(short[0].count == 9)
        do {
            _ = try await provider("fail_all: true").embed(["a"], mode: .document)
        } catch let error as EmbeddingError {
            #expect(error.kind == .fatal)
        }
    }

    @Test func healthSpendsNoEmbedding() async throws {
        let mock = try provider()
        #expect(await mock.health().status == .up)
        #expect(mock.statistics.calls == 0)
        #expect(mock.statistics.healthChecks == 1)
    }

    @Test func configurationErrorsNameTheKey() {
        #expect(throws: ConfigError.self) { try provider("dimension: 3") }
        #expect(throws: ConfigError.self) { try provider("error_rate: 2") }
        #expect(throws: ConfigError.self) { try provider("dimensions: many") }
    }
}

/// The provider conformance suite against the mock, and against deliberately broken providers
/// to show the suite catches them.
@Suite struct MockProviderConformanceTests {
    static func harness(_ fault: ProviderFault?) -> ProviderUnderTest? {
        var configuration = MockProvider.Configuration()
        configuration.dimensions = 64
        configuration.maxBatchSize = 8
        switch fault {
        case nil: break
        case .unavailable: configuration.errorRate = 1
        case .rateLimited: configuration.rateLimitRate = 1
        case .rejectsPoison: configuration.rejectTextsContaining = [ProviderConformance.poison]
        case .badCredentials: configuration.failAll = true
        case .slow: configuration.latencyMs = ProviderConformance.slowAnswerSeconds * 1000
        }
        let provider = MockProvider(configuration: configuration)
        return ProviderUnderTest(provider, embeddingCalls: { provider.statistics.calls })
    }

    @Test(arguments: ProviderCheck.allCases)
    func conformance(_ check: ProviderCheck) async throws {
        try await ProviderConformance { Self.harness($0) }.run(check)
    }

    /// Answers in reverse order.
    struct Shuffling: EmbeddingProvider {
        let inner = MockProvider()
        var model: ModelInfo { inner.model }
        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] { try await inner.embed(texts, mode: mode).reversed() }
        func health() async -> ComponentHealth { .up }
    }

    /// Checks its health by embedding a word.
    struct HealthSpends: EmbeddingProvider {
        let inner = MockProvider()
        var model: ModelInfo { inner.model }
        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] { try await inner.embed(texts, mode: mode) }
        func health() async -> ComponentHealth { (try? await inner.embed(["ping"], mode: .document)) != nil ? .up : ComponentHealth(status: .down) }
    }

    /// Lets its backend's errors through as they are.
    struct Unclassified: EmbeddingProvider {
        let inner: MockProvider
        var model: ModelInfo { inner.model }
        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
            do { return try await inner.embed(texts, mode: mode) } catch { throw CocoaError(.fileReadUnknown) }
        }
        func health() async -> ComponentHealth { .up }
    }

    /// Sends everything in one call, whatever its limit.
    final class IgnoresLimit: EmbeddingProvider {
        let model = ModelInfo(name: "greedy", dimensions: 8, maxBatchSize: 4)
        let calls = Mutex(0)
        func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
            calls.withLock { $0 += 1 }
            return texts.map { MockProvider.vector(for: $0, dimensions: 8) }
        }
        func health() async -> ComponentHealth { .up }
    }

    @Test func theSuiteCatchesAShuffledAnswer() async throws {
        await withKnownIssue {
            try await ProviderConformance { _ in ProviderUnderTest(Shuffling()) }.run(.batchOrderIsKept)
        }
    }

    @Test func theSuiteCatchesAHealthCheckThatSpendsAnEmbedding() async throws {
        await withKnownIssue {
            try await ProviderConformance { _ in
                let provider = HealthSpends()
                return ProviderUnderTest(provider, embeddingCalls: { provider.inner.statistics.calls })
            }.run(.healthSpendsNoEmbedding)
        }
    }

    @Test func theSuiteCatchesUnclassifiedErrors() async throws {
        await withKnownIssue {
            try await ProviderConformance { fault in Self.harness(fault).map { ProviderUnderTest(Unclassified(inner: $0.provider as! MockProvider)) } }
                .run(.errorsMapOntoCoreKinds)
        }
    }

    @Test func theSuiteCatchesABatchOverTheLimit() async throws {
        await withKnownIssue {
            try await ProviderConformance { _ in
                let provider = IgnoresLimit()
                return ProviderUnderTest(provider, embeddingCalls: { provider.calls.withLock { $0 } })
            }.run(.maxBatchSizeIsRespected)
        }
    }
}
