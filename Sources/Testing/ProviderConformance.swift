import EmbedStarCore
import Foundation
import Testing

/// One promise of the ``EmbeddingProvider`` contract, checked by ``ProviderConformance``.
public enum ProviderCheck: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case batchOrderIsKept
    case emptyBatchCostsNothing
    case maxBatchSizeIsRespected
    case unicodeAndVeryLongInput
    case queryAndDocumentModes
    case dimensionsAreAsReported
    case healthSpendsNoEmbedding
    case errorsMapOntoCoreKinds
    case cancellationIsHonoured

    public var testDescription: String { rawValue }
}

/// A fault the backend is made to show, for ``ProviderCheck/errorsMapOntoCoreKinds`` and
/// ``ProviderCheck/cancellationIsHonoured``.
public enum ProviderFault: String, CaseIterable, Sendable {
    /// The backend is down or answers 5xx: `.retryable`.
    case unavailable
    /// The backend says slow down (429, retry-after): `.rateLimited`.
    case rateLimited
    /// The backend refuses ``ProviderConformance/poison`` as input: `.invalidInput`.
    case rejectsPoison
    /// The key is wrong: `.fatal`.
    case badCredentials
    /// The backend takes ``ProviderConformance/slowAnswerSeconds`` (30 s) or more to answer.
    case slow
}

/// A provider under test and what the harness can observe of its backend.
public struct ProviderUnderTest: Sendable {
    public var provider: any EmbeddingProvider
    /// Embedding calls the backend has received from this provider so far; nil when it cannot
    /// be observed (the checks that need it then check less).
    public var embeddingCalls: (@Sendable () async throws -> Int)?

    public init(_ provider: any EmbeddingProvider, embeddingCalls: (@Sendable () async throws -> Int)? = nil) {
        self.provider = provider
        self.embeddingCalls = embeddingCalls
    }
}

/// The provider contract as executable checks. A plugin's test target runs all of them in one
/// test:
///
/// ```swift
/// @Test(arguments: ProviderCheck.allCases)
/// func conformance(_ check: ProviderCheck) async throws {
///     try await ProviderConformance { fault in
///         guard fault == nil else { return nil }  // faults this harness cannot arrange
///         return ProviderUnderTest(try MyProvider(url: serverURL))
///     }.run(check)
/// }
/// ```
///
/// `make(nil)` returns a working provider; `make(fault)` one whose backend shows that fault on
/// every embedding call, or nil when the harness cannot arrange it (those parts are skipped).
/// Keep `max_batch_size` small (8 or so) in the harness: one check sends one text more than it.
public struct ProviderConformance: Sendable {
    public typealias Factory = @Sendable (ProviderFault?) async throws -> ProviderUnderTest?

    /// The input a harness makes its backend reject for ``ProviderFault/rejectsPoison``.
    public static let poison = "conformance poison: reject me"
    /// How long a harness makes its backend take for ``ProviderFault/slow``, at least.
    public static let slowAnswerSeconds = 30

    let make: Factory

    public init(make: @escaping Factory) {
        self.make = make
    }

    static let texts = [
        "A small TOML parser written in Rust",
        "Kubernetes operator for PostgreSQL clusters",
        "2D game engine with a physics simulation",
        "Password manager for the command line",
        "Un analizador de JSON muy rápido para Go",
        "機械学習モデルを手元で動かすツール",
    ]

    public func run(_ check: ProviderCheck) async throws {
        let subject = try #require(try await make(nil), "make(nil) must return a working provider")
        let provider = subject.provider
        let model = try await provider.prepare()
        switch check {
        case .batchOrderIsKept:
            let batch = try await provider.embed(Self.texts, mode: .document)
            try #require(batch.count == Self.texts.count, "\(check): one vector per text")
            for (index, text) in Self.texts.enumerated() {
                let single = try await provider.embed([text], mode: .document)[0]
                let own = cosine(batch[index], single)
                let best = batch.indices.max { cosine(batch[$0], single) < cosine(batch[$1], single) }
                #expect(own > 0.99 && best == index, "\(check): vector \(index) of the batch is not the vector of text \(index) (cosine \(own))")
            }

        case .emptyBatchCostsNothing:
            let before = try await subject.embeddingCalls?()
            let vectors = try await provider.embed([], mode: .document)
            #expect(vectors.isEmpty, "\(check): no texts, no vectors")
            if let before, let after = try await subject.embeddingCalls?() {
                #expect(after == before, "\(check): an empty batch reached the backend")
            }

        case .maxBatchSizeIsRespected:
            #expect(model.maxBatchSize >= 1, "\(check): max batch size must be at least 1")
            guard model.maxBatchSize <= 256 else { return }  // too costly to exceed here; configure a small one
            let texts = (0...model.maxBatchSize).map { "repo number \($0): \(Self.texts[$0 % Self.texts.count])" }
            let before = try await subject.embeddingCalls?()
            do {
                let vectors = try await provider.embed(texts, mode: .document)
                #expect(vectors.count == texts.count, "\(check): \(texts.count) texts, \(vectors.count) vectors")
                if let before, let after = try await subject.embeddingCalls?() {
                    #expect(after - before >= 2, "\(check): \(texts.count) texts went to the backend in one call; the limit is \(model.maxBatchSize)")
                }
                if vectors.count == texts.count {
                    let last = try await provider.embed([texts[texts.count - 1]], mode: .document)[0]
                    #expect(cosine(vectors[texts.count - 1], last) > 0.99, "\(check): the split batch came back out of order")
                }
            } catch let error as EmbeddingError {
                if case .fatal = error.kind { Issue.record("\(check): a batch over the limit must be split or refused as input, not be fatal: \(error)") }
            }

        case .unicodeAndVeryLongInput:
            let long = String(repeating: "streaming parser with good error messages ", count: max(200, (model.maxInputTokens ?? 512) / 2))
            let texts = ["emoji 👍🏽 and RTL שלום and combining é", "日本語のテキスト", "\u{2028}line separator", long]
            do {
                let vectors = try await provider.embed(texts, mode: .document)
                #expect(vectors.count == texts.count, "\(check): one vector per text")
                #expect(vectors.allSatisfy { $0.allSatisfy(\.isFinite) && norm($0) > 0 }, "\(check): vectors must be finite and non-zero")
            } catch let error as EmbeddingError {
                // Refusing the long text as input is allowed; anything else is not.
                guard case .invalidInput = error.kind else {
                    Issue.record("\(check): unicode or a long text must be embedded or refused as invalid input, got \(error)")
                    return
                }
            }

        case .queryAndDocumentModes:
            let text = Self.texts[0]
            let query = try await provider.embed([text], mode: .query)
            let document = try await provider.embed([text], mode: .document)
            #expect(query.count == 1 && document.count == 1)
            if let q = query.first, let d = document.first {
                #expect(q.count == d.count, "\(check): both modes must give the same dimension")
                #expect(cosine(q, d) > 0.5, "\(check): a text as query and as document must stay close (cosine \(cosine(q, d)))")
            }

        case .dimensionsAreAsReported:
            let vectors = try await provider.embed(Array(Self.texts.prefix(3)), mode: .document)
            let dimensions = Set(vectors.map(\.count))
            #expect(dimensions.count == 1, "\(check): every vector of one model must have one dimension")
            if let reported = model.dimensions {
                #expect(dimensions == [reported], "\(check): prepare() reported \(reported) dimensions, vectors have \(dimensions.sorted())")
            }
            #expect(vectors.allSatisfy { $0.allSatisfy(\.isFinite) && norm($0) > 0 })

        case .healthSpendsNoEmbedding:
            let before = try await subject.embeddingCalls?()
            for _ in 0..<3 {
                let health = await provider.health()
                #expect(health.status == .up, "\(check): a working provider must report up, got \(health.status)")
            }
            if let before, let after = try await subject.embeddingCalls?() {
                #expect(after == before, "\(check): health() spent \(after - before) embedding call(s)")
            }

        case .errorsMapOntoCoreKinds:
            let expected: [(ProviderFault, String)] = [(.unavailable, "retryable"), (.rateLimited, "rate_limited"),
                                                       (.rejectsPoison, "invalid_input"), (.badCredentials, "fatal")]
            for (fault, label) in expected {
                guard let faulty = try await make(fault) else { continue }
                _ = try? await faulty.provider.prepare()
                do {
                    _ = try await faulty.provider.embed([Self.texts[0], Self.poison], mode: .document)
                    Issue.record("\(check): \(fault): embed succeeded; expected a \(label) error")
                } catch let error as EmbeddingError {
                    #expect(error.label == label, "\(check): \(fault) must be \(label), got \(error.label): \(error.message)")
                    if case .invalidInput(let indices?) = error.kind {
                        #expect(indices == [1], "\(check): the rejected input is index 1, the provider named \(indices)")
                    }
                } catch {
                    Issue.record("\(check): \(fault): errors must be EmbeddingError, got \(type(of: error)): \(error)")
                }
            }

        case .cancellationIsHonoured:
            guard let slow = try await make(.slow) else { return }
            let started = ContinuousClock.now
            let task = Task { try await slow.provider.embed([Self.texts[0]], mode: .document) }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            let result = await task.result
            let elapsed = ContinuousClock.now - started
            // Honoured means the call ends with an error, before the backend's answer would have
            // come; a loaded machine may take seconds to get there, never the backend's 30 s.
            if case .success = result {
                Issue.record("\(check): a cancelled embed returned vectors after \(elapsed)")
            }
            #expect(elapsed < .seconds(Self.slowAnswerSeconds), "\(check): a cancelled embed took \(elapsed) to return")
        }
    }
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    guard a.count == b.count else { return -1 }
    var dot: Double = 0, na: Double = 0, nb: Double = 0
    for i in a.indices {
        dot += Double(a[i]) * Double(b[i])
        na += Double(a[i]) * Double(a[i])
        nb += Double(b[i]) * Double(b[i])
    }
    return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
}

func norm(_ a: [Float]) -> Double {
    a.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
}
