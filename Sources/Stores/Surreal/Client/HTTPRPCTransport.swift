import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// RPC over `POST /rpc`: stateless, so namespace, database and credentials go with every
/// request (`surreal-ns`, `surreal-db`, `Authorization`).
final class HTTPRPCTransport: RPCTransport {
    private let configuration: SurrealConfiguration
    private let client: HTTPClient
    private let limiter: ConnectionLimiter
    private let nextID = Atomic<Int64>(0)
    private let closed = Atomic<Bool>(false)
    private let headers: HTTPHeaders

    init(configuration: SurrealConfiguration) {
        self.configuration = configuration
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.poolSize
        clientConfiguration.timeout.connect = .nanoseconds(configuration.connectTimeout.nanoseconds)
        clientConfiguration.tlsConfiguration = configuration.tls
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        limiter = ConnectionLimiter(capacity: configuration.poolSize, label: "http")
        var headers: HTTPHeaders = [
            "content-type": "application/cbor", "accept": "application/cbor",
            "surreal-ns": configuration.namespace, "surreal-db": configuration.database,
            // 1.x servers read these names.
            "NS": configuration.namespace, "DB": configuration.database,
        ]
        if let credentials = configuration.credentials {
            let token = Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
            headers.add(name: "authorization", value: "Basic \(token)")
        }
        self.headers = headers
    }

    func call(_ method: String, _ params: [SurrealValue]) async throws -> SurrealValue {
        let id = nextID.add(1, ordering: .relaxed).newValue
        var request = HTTPClientRequest(url: configuration.endpoint)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(ByteBuffer(bytes: RPC.request(id: id, method: method, params: params)))
        return try await limiter.withSlot(timeout: configuration.poolWaitTimeout) {
            let response: HTTPClientResponse
            var body: ByteBuffer
            do {
                response = try await client.execute(request, timeout: .nanoseconds(configuration.requestTimeout.nanoseconds))
                body = try await response.body.collect(upTo: 256 * 1024 * 1024)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw SurrealError.connecting(to: configuration.endpoint, error)
            }
            switch response.status.code {
            case 200: break
            case 401, 403: throw SurrealError(.authentication, "the server refused the credentials (HTTP \(response.status.code))")
            case 502, 503, 504: throw SurrealError(.unavailable, "HTTP \(response.status.code) from \(configuration.endpoint)")
            default:
                let text = body.readString(length: min(body.readableBytes, 300)) ?? ""
                throw SurrealError(.protocolViolation, "HTTP \(response.status.code) from \(configuration.endpoint): \(text)")
            }
            let reply: SurrealValue
            do {
                reply = try CBOR.decode(body.readableBytesView)
            } catch {
                throw SurrealError(.protocolViolation, "\(error)")
            }
            return try RPC.result(of: reply)
        }
    }

    func close() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? await client.shutdown()
    }

    /// A transport dropped without `close` (a store never shut down, a test that threw) shuts
    /// its client down in the background: the client keeps itself alive until it is down.
    /// AsyncHTTPClient stops a debug build whose client is released while still running.
    deinit {
        if !closed.load(ordering: .acquiring) { _ = client.shutdown() }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
