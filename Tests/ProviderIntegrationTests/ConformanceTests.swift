import EmbedStarCore
import EmbedStarLocal
import EmbedStarTesting
import Foundation
import Testing

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The provider conformance suite against every shipped provider and the real model: the HTTP
/// ones through the test front (which injects the faults), the local one in process. One case
/// at a time: they share one model on two cores, and a check must not time out for load.
@Suite(.serialized, .enabled(if: ModelServer.available, "needs the model server (scripts/test)"))
struct ProviderConformanceTests {
    static let httpProviders = ["openai", "together", "ollama"]

    static func faults(_ fault: ProviderFault) -> [[String: Any]] {
        let one: [String: Any]
        switch fault {
        case .unavailable: one = ["status": 503, "body": ["error": ["message": "overloaded"]]]
        case .rateLimited: one = ["status": 429, "headers": ["retry-after": "1"], "body": ["error": ["message": "Rate limit reached"]]]
        case .rejectsPoison: one = ["status": 400, "body": ["error": ["message": "input 1 is invalid: content rejected"]]]
        case .badCredentials: one = ["status": 401, "body": ["error": ["message": "Incorrect API key provided"]]]
        case .slow: one = ["slow": Double(ProviderConformance.slowAnswerSeconds)]
        }
        return Array(repeating: one, count: 3)
    }

    @Test(arguments: httpProviders, ProviderCheck.allCases)
    func httpProvider(_ name: String, _ check: ProviderCheck) async throws {
        try await ProviderConformance { fault in
            let server = try ModelServer()  // a token of its own: its faults and counts are its own
            if let fault { try await server.inject(Self.faults(fault)) }
            let provider = try server.provider(name, "max_batch_size: 8\n")
            return ProviderUnderTest(provider, embeddingCalls: { try await server.embedCalls() })
        }.run(check)
    }

    @Test(arguments: ProviderCheck.allCases)
    func localProvider(_ check: ProviderCheck) async throws {
        try await ProviderConformance { fault in
            guard fault == nil else { return nil }  // an engine in the process cannot be made to fail
            var configuration = LocalProvider.Configuration()
            configuration.maxBatchSize = 8
            configuration.threads = 1  // leave a core to the tests running beside this one
            return ProviderUnderTest(try LocalProvider(configuration: configuration, searchFrom: [packageRoot]))
        }.run(check)
    }
}
