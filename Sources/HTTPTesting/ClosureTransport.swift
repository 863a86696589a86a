import EmbedStarHTTPProvider

/// A transport from a closure, for a provider's unit tests: requests are answered by `handler`,
/// with no network (request building and answer handling tested byte for byte). Lives in the
/// `EmbedStarHTTPTesting` library, not among the provider's production types.
public struct ClosureTransport: HTTPTransport {
    let handler: @Sendable (HTTPExchange.Request) async throws -> HTTPExchange.Response

    public init(_ handler: @escaping @Sendable (HTTPExchange.Request) async throws -> HTTPExchange.Response) {
        self.handler = handler
    }

    public func send(_ request: HTTPExchange.Request) async throws -> HTTPExchange.Response {
        try await handler(request)
    }
}
