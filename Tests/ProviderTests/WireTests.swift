import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import EmbedStarHTTPTesting
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarTogether
import EmbedStarMockStore
import EmbedStarMockProvider
import Foundation
import NIOHTTP1
import Synchronization
import Testing

private func data(_ text: String) -> Data { Data(text.utf8) }

private func base64(_ values: [Float]) -> String {
    var bytes = Data()
    for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    return bytes.base64EncodedString()
}

private func kind(_ status: Int, _ body: String, _ headers: HTTPHeaders = [:]) -> EmbeddingError.Kind {
    ProviderErrors.classify(status: status, headers: headers, body: data(body), provider: "test").kind
}

@Suite struct WireTests {
    @Test func decodesFloatAndBase64AndOrdersByIndex() throws {
        let body = #"{"object":"list","data":[{"index":1,"embedding":"\#(base64([0.5, -1.25]))"},{"index":0,"embedding":[1.0,2.0]}]}"#
        let vectors = try OpenAIWire.decodeResponse(data(body), expectedCount: 2, provider: "test")
        #expect(vectors == [[1, 2], [0.5, -1.25]])
    }

    @Test func rejectsWrongCountDuplicatesAndBadJSON() {
        func error(_ body: String, count: Int) -> EmbeddingError? {
            do {
                _ = try OpenAIWire.decodeResponse(data(body), expectedCount: count, provider: "test")
                return nil
            } catch { return error as? EmbeddingError }
        }
        let wrongCount = error(#"{"data":[{"index":0,"embedding":[1]}]}"#, count: 2)
        #expect(wrongCount?.kind == .retryable)
        #expect(wrongCount?.message.contains("returned 1 vectors for 2 inputs") == true)
        #expect(error(#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#, count: 2)?.message.contains("duplicate") == true)
        #expect(error(#"{"data":[{"index":5,"embedding":[1]}]}"#, count: 1) != nil)
        #expect(error(#"{"data":[{"index":0,"embedding":[1,"#, count: 1)?.kind == .retryable)
        #expect(error(#"{"data":[{"index":0,"embedding":"!!notbase64"}]}"#, count: 1)?.kind == .retryable)
    }

    @Test func errorCategories() {
        #expect(kind(429, #"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#, ["retry-after": "2"])
            == .rateLimited(retryAfter: .seconds(2)))
        #expect(kind(429, #"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#) == .fatal)
        #expect(kind(400, #"{"error":{"message":"slow down","code":"rate_limit"}}"#) == .rateLimited(retryAfter: nil))
        #expect(kind(401, #"{"error":{"message":"Incorrect API key provided"}}"#) == .fatal)
        #expect(kind(403, "forbidden") == .fatal)
        #expect(kind(404, #"{"error":{"message":"The model does not exist"}}"#) == .fatal)
        for status in [408, 409, 500, 502, 503, 504] { #expect(kind(status, "oops") == .retryable, "\(status)") }
        #expect(kind(400, #"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#) == .invalidInput(indices: nil))
        #expect(kind(400, #"{"error":"input length exceeds the context length"}"#) == .invalidInput(indices: nil))
        #expect(kind(400, #"{"error":{"message":"This model does not support specifying dimensions."}}"#) == .fatal)
        #expect(kind(400, "bad", ["x-should-retry": "true"]) == .retryable)
    }

    @Test func retryAfterForms() {
        #expect(ProviderErrors.retryAfter(["retry-after-ms": "1500"]) == .milliseconds(1500))
        #expect(ProviderErrors.retryAfter(["retry-after": "3"]) == .seconds(3))
        #expect(ProviderErrors.retryAfter(["retry-after": "0.25"]) == .milliseconds(250))
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(ProviderErrors.retryAfter(["retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"], now: now) == .seconds(10))
        #expect(ProviderErrors.retryAfter(["retry-after": "soon"]) == nil)
        #expect(ProviderErrors.retryAfter([:]) == nil)
    }

    @Test func rateLimitHeaders() {
        let openAI = ProviderErrors.rateLimitHint([
            "x-ratelimit-limit-requests": "3000", "x-ratelimit-remaining-requests": "2999", "x-ratelimit-reset-requests": "20ms",
            "x-ratelimit-limit-tokens": "1000000", "x-ratelimit-remaining-tokens": "999000", "x-ratelimit-reset-tokens": "6m0s",
        ], provider: "openai")
        #expect(openAI.requestsLimit == 3000 && openAI.requestsRemaining == 2999 && openAI.requestsReset == .milliseconds(20))
        #expect(openAI.tokensLimit == 1_000_000 && openAI.tokensRemaining == 999_000 && openAI.tokensReset == .seconds(360))
        let together = ProviderErrors.rateLimitHint(["x-ratelimit-limit": "100", "x-ratelimit-remaining": "7", "x-ratelimit-reset": "2", "x-tokenlimit-remaining": "500"], provider: "together")
        #expect(together.requestsLimit == 100 && together.requestsRemaining == 7 && together.requestsReset == .seconds(2) && together.tokensRemaining == 500)
        #expect(ProviderErrors.rateLimitHint([:], provider: "x").isEmpty)
        #expect(ProviderErrors.parseDuration("1h2m3.5s") == .milliseconds(3_723_500))
        #expect(ProviderErrors.parseDuration("abc") == nil)
        // A plain number that is a Unix timestamp: the time until it, not decades.
        let now = Date(timeIntervalSince1970: 1_796_000_000)
        #expect(ProviderErrors.parseDuration("1796000012", now: now) == .seconds(12))
        #expect(ProviderErrors.parseDuration("1795999000", now: now) == .zero, "a reset in the past waits nothing")
        #expect(ProviderErrors.parseDuration("999999999", now: now) == .seconds(86_400), "capped at a day")
        #expect(ProviderErrors.parseDuration("9000h", now: now) == .seconds(86_400))
    }

    func openAI(_ yaml: String, transport: ClosureTransport, observer: @escaping @Sendable (RateLimitHint) -> Void = { _ in }) throws -> OpenAIProvider {
        let node = try ConfigNode.parse(yaml: yaml, source: "t.yaml")
        let configuration = try ConfigDecoder().decode(OpenAIProvider.Configuration.self, from: node, path: "providers.openai")
        return OpenAIProvider(configuration: configuration, transport: transport, rateLimitObserver: observer)
    }

    @Test func openAIRequestShapeHeadersAndHints() async throws {
        let seen = Mutex<HTTPExchange.Request?>(nil)
        let hints = Mutex<[RateLimitHint]>([])
        let transport = ClosureTransport { request in
            seen.withLock { $0 = request }
            let body = #"{"data":[{"index":0,"embedding":"\#(base64([0.6, 0.8]))"}]}"#
            return HTTPExchange.Response(status: 200, headers: ["x-ratelimit-remaining-requests": "9"], body: Data(body.utf8))
        }
        let provider = try openAI("api_key: sk-test\nbase_url: https://example.test/v1/\norganization: org-1\nproject: p-1\ndimensions: 2\nmodel: text-embedding-3-small",
                                  transport: transport, observer: { hint in hints.withLock { $0.append(hint) } })
        #expect(provider.model.dimensions == 2)
        let vectors = try await provider.embed(["hello"], mode: .document)
        #expect(vectors == [[0.6, 0.8]])
        let request = try #require(seen.withLock { $0 })
        #expect(request.url == "https://example.test/v1/embeddings")
        #expect(request.headers.first(name: "authorization") == "Bearer sk-test")
        #expect(request.headers.first(name: "openai-organization") == "org-1")
        #expect(request.headers.first(name: "openai-project") == "p-1")
        let sent = try #require(try JSONSerialization.jsonObject(with: request.body ?? Data()) as? [String: Any])
        #expect(sent["encoding_format"] as? String == "base64")
        #expect(sent["dimensions"] as? Int == 2)
        #expect(sent["input"] as? [String] == ["hello"])
        #expect(hints.withLock { $0.first?.requestsRemaining } == 9)
    }

    @Test func errorsNeverCarryTheKey() async throws {
        let transport = ClosureTransport { _ in
            HTTPExchange.Response(status: 401, body: Data(#"{"error":{"message":"Incorrect API key provided: sk-sec***cret"}}"#.utf8))
        }
        let provider = try openAI("api_key: sk-secret-value\nbase_url: https://example.test/v1", transport: transport)
        do {
            _ = try await provider.embed(["x"], mode: .document)
            Issue.record("expected an error")
        } catch let error as EmbeddingError {
            #expect(error.kind == .fatal)
            #expect(!error.description.contains("sk-secret-value"))
        }
    }

    @Test func openAIConfigurationRules() {
        #expect(throws: ConfigError.self) { try openAI("model: text-embedding-3-small", transport: ClosureTransport { _ in throw CancellationError() }) }
        #expect(throws: ConfigError.self) { try openAI("api_key: k\nmodel: text-embedding-ada-002\ndimensions: 256", transport: ClosureTransport { _ in throw CancellationError() }) }
        #expect(throws: ConfigError.self) { try openAI("api_key: k\nencoding_format: hex", transport: ClosureTransport { _ in throw CancellationError() }) }
        #expect(throws: ConfigError.self) { try openAI("api_key: k\nbase_url: ftp://x", transport: ClosureTransport { _ in throw CancellationError() }) }
        #expect(throws: ConfigError.self) { try openAI("api_key: k\nmax_batch_size: 5000", transport: ClosureTransport { _ in throw CancellationError() }) }
    }
}

@Suite struct ProviderConfigTests {
    var registry: PluginRegistry {
        var registry = PluginRegistry()
        try! registry.register(ProviderFactory.openAI)
        try! registry.register(ProviderFactory.mock)
        try! registry.register(StoreFactory.mock)
        return registry
    }

    func load(_ section: String, provider: String = "mock") throws -> LoadedConfiguration {
        try ConfigLoader.load(yaml: "provider: \(provider)\nstore: mock\nproviders:\n  openai:\n\(section)", source: "plugins.yaml")
    }

    @Test func unselectedProviderNeedsNoKeyButMustHaveNoTypos() throws {
        try registry.validate(try load("    api_key: ${OPENAI_API_KEY}\n    model: text-embedding-3-large\n"))
        #expect(throws: ConfigError.self) { try registry.validate(try load("    api_key: ${OPENAI_API_KEY}\n    modle: x\n")) }
        do {
            try registry.validate(try load("    api_key: ${OPENAI_API_KEY}\n    modle: x\n"))
        } catch {
            #expect("\(error)" == "plugins.yaml:6:5: providers.openai: unknown key 'modle'; did you mean 'model'?")
        }
    }

    @Test func selectedProviderWithoutItsKeyNamesTheVariable() throws {
        do {
            try registry.validate(try load("    api_key: ${OPENAI_API_KEY}\n", provider: "openai"))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("providers.openai.api_key"))
            #expect("\(error)".contains("OPENAI_API_KEY"))
        }
    }
}

/// Model prompts are the provider's knowledge: each names its models' prefixes on ``ModelInfo``.
@Suite struct ModelPrefixTests {
    let nowhere = ClosureTransport { _ in throw EmbeddingError(.fatal, "no network in this test") }

    @Test func ollamaNamesNomicsPrefixes() {
        var configuration = OllamaProvider.Configuration()
        configuration.model = "nomic-embed-text:v1.5"
        #expect(OllamaProvider(configuration: configuration, transport: nowhere).model.prefixes
            == TaskPrefixes(query: "search_query: ", document: "search_document: "))
        configuration.model = "mxbai-embed-large"
        #expect(OllamaProvider(configuration: configuration, transport: nowhere).model.prefixes == .none)
    }

    @Test func togetherNamesTheInstructAndBGEQueryPrompts() {
        var configuration = TogetherProvider.Configuration()
        configuration.model = "BAAI/bge-base-en-v1.5"
        let bge = TogetherProvider(configuration: configuration, transport: nowhere).model.prefixes
        #expect(bge.query.hasPrefix("Represent") && bge.document == "")
        configuration.model = "intfloat/multilingual-e5-large-instruct"
        #expect(TogetherProvider(configuration: configuration, transport: nowhere).model.prefixes.query.hasPrefix("Instruct: "))
        configuration.model = "togethercomputer/m2-bert-80M-8k-retrieval"
        #expect(TogetherProvider(configuration: configuration, transport: nowhere).model.prefixes == .none)
    }
}
