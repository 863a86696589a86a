import AsyncHTTPClient
import NIOSSL
import EmbedStarCore
import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP exchange as the providers see it: bytes in, status, headers and bytes out.
public struct HTTPExchange: Sendable {
    public struct Request: Sendable {
        public var method: HTTPMethod
        public var url: String
        public var headers: HTTPHeaders
        public var body: Data?
        public var timeout: Duration

        public init(method: HTTPMethod, url: String, headers: HTTPHeaders = [:], body: Data? = nil, timeout: Duration) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.timeout = timeout
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: Data

        public init(status: Int, headers: HTTPHeaders = [:], body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }
}

/// The seam between a provider and the network: AsyncHTTPClient in production, a closure in
/// unit tests, so request building and response handling are tested without a server.
public protocol HTTPTransport: Sendable {
    /// Sends `request`. Throws only for transport failures (connect, timeout, reset); an HTTP
    /// error status is a response, not a throw.
    func send(_ request: HTTPExchange.Request) async throws -> HTTPExchange.Response
}

/// Sends requests through a shared AsyncHTTPClient (connection reuse, TLS for https).
public struct AsyncHTTPClientTransport: HTTPTransport {
    public var client: HTTPClient
    /// Larger answers are refused: a provider never needs more, and a runaway body must not
    /// exhaust memory.
    public var maxResponseBytes: Int
    /// TLS for every request (a private CA; ``ProviderTLS``); nil keeps the client's.
    public var tls: TLSConfiguration?

    /// - Parameter client: `.shared` (the process's one client: plugins share its connection
    ///   pools, and it needs no shutdown) unless a test brings its own.
    public init(client: HTTPClient = .shared, maxResponseBytes: Int = 256 * 1024 * 1024, tls: TLSConfiguration? = nil) {
        self.client = client
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
    }

    public func send(_ request: HTTPExchange.Request) async throws -> HTTPExchange.Response {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        if let tls { outgoing.tlsConfiguration = tls }
        let timeout = TimeAmount.nanoseconds(request.timeout.nanoseconds)
        let deadline = NIODeadline.now() + timeout
        let response = try await client.execute(outgoing, deadline: deadline)
        var buffer = try await response.body.collect(upTo: maxResponseBytes)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        return HTTPExchange.Response(status: Int(response.status.code), headers: response.headers, body: Data(bytes))
    }
}
