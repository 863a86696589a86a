import EmbedStarCore
import Foundation
import Logging
import NIOHTTP1

/// Sends a provider's JSON requests: transport faults become retryable errors, error statuses
/// are classified, rate-limit headers are handed on. Shared by every HTTP provider.
public struct ProviderHTTPClient: Sendable {
    public let provider: String
    public let transport: any HTTPTransport
    public let timeout: Duration
    public let baseHeaders: HTTPHeaders
    let rateLimitObserver: @Sendable (RateLimitHint) -> Void

    public init(
        provider: String, transport: any HTTPTransport, timeout: Duration, headers: HTTPHeaders = [:],
        rateLimitObserver: @escaping @Sendable (RateLimitHint) -> Void = { _ in }
    ) {
        self.provider = provider
        self.transport = transport
        self.timeout = timeout
        var headers = headers
        headers.replaceOrAdd(name: "accept", value: "application/json")
        headers.replaceOrAdd(name: "user-agent", value: "embed-star")
        baseHeaders = headers
        self.rateLimitObserver = rateLimitObserver
    }

    /// Sends `body` as JSON and returns the answer of a 2xx status; throws ``EmbeddingError``.
    public func post(_ url: String, json body: Data) async throws -> HTTPExchange.Response {
        var headers = baseHeaders
        headers.replaceOrAdd(name: "content-type", value: "application/json")
        return try await send(HTTPExchange.Request(method: .POST, url: url, headers: headers, body: body, timeout: timeout))
    }

    public func get(_ url: String) async throws -> HTTPExchange.Response {
        try await send(HTTPExchange.Request(method: .GET, url: url, headers: baseHeaders, timeout: timeout))
    }

    /// Like `send`, but returns error answers too (for callers that read their status).
    public func exchange(_ request: HTTPExchange.Request) async throws -> HTTPExchange.Response {
        let response: HTTPExchange.Response
        do {
            response = try await transport.send(request)
        } catch {
            throw ProviderErrors.transport(error, provider: provider, url: request.url)
        }
        let hint = ProviderErrors.rateLimitHint(response.headers, provider: provider)
        if !hint.isEmpty { rateLimitObserver(hint) }
        return response
    }

    public func send(_ request: HTTPExchange.Request) async throws -> HTTPExchange.Response {
        let response = try await exchange(request)
        guard (200..<300).contains(response.status) else {
            throw ProviderErrors.classify(status: response.status, headers: response.headers, body: response.body, provider: provider)
        }
        return response
    }

    /// `base` and `path` joined with exactly one slash.
    public static func join(_ base: String, _ path: String) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        return path.hasPrefix("/") ? base + path : base + "/" + path
    }
}

extension ProviderHTTPClient {
    /// A health probe: a cheap GET that spends no embedding; `up` on a 2xx answer.
    public func probe(_ url: String) async -> ComponentHealth {
        let started = ContinuousClock.now
        do {
            _ = try await get(url)
            return ComponentHealth(status: .up, latency: ContinuousClock.now - started)
        } catch {
            return ComponentHealth(status: .down, detail: "\(error)", latency: ContinuousClock.now - started)
        }
    }

    /// One OpenAI-shaped `POST {base}/embeddings` call, vectors in input order.
    public func openAIEmbeddings(
        baseURL: String, model: String, texts: [String], encoding: OpenAIWire.EncodingFormat? = nil,
        dimensions: Int? = nil, user: String? = nil
    ) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        if let empty = texts.firstIndex(where: \.isEmpty) {
            throw EmbeddingError(.invalidInput(indices: [empty]), "\(provider) rejects empty strings")
        }
        let body = try OpenAIWire.encodeRequest(model: model, input: texts, encoding: encoding, dimensions: dimensions, user: user)
        let response = try await post(Self.join(baseURL, "embeddings"), json: body)
        return try OpenAIWire.decodeResponse(response.body, expectedCount: texts.count, provider: provider)
    }
}
