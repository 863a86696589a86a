import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import Metrics
import NIOCore
import NIOSSL
import Synchronization

/// RPC over WebSocket: a pool of long-lived connections, each multiplexing calls by id.
final class WebSocketRPCTransport: RPCTransport {
    private let connections: [WebSocketConnection]
    private let next = Atomic<Int>(0)

    init(configuration: SurrealConfiguration, logger: Logger) {
        connections = (0..<max(1, configuration.poolSize)).map { index in
            WebSocketConnection(configuration: configuration, logger: logger, index: index)
        }
    }

    func call(_ method: String, _ params: [SurrealValue]) async throws -> SurrealValue {
        let index = next.add(1, ordering: .relaxed).oldValue % connections.count
        return try await connections[index].call(method, params)
    }

    func close() async {
        for connection in connections { await connection.close() }
    }
}

/// One WebSocket connection. Connects on first use, signs in and selects the namespace and
/// database on every (re)connect, fails the calls in flight when the connection drops (they
/// are retryable), and reconnects on the next call with backoff and jitter.
actor WebSocketConnection {
    private enum State {
        case disconnected
        case connecting(waiters: [Int: CheckedContinuation<AsyncStream<[UInt8]>.Continuation, any Error>])
        case ready(AsyncStream<[UInt8]>.Continuation)
        case closed
    }

    private let configuration: SurrealConfiguration
    private let logger: Logger
    private let inUse: Gauge
    private var state = State.disconnected
    private var pending: [Int64: CheckedContinuation<SurrealValue, any Error>] = [:]
    private var nextID: Int64 = 0
    private var nextWaiter = 0
    /// Connection attempts that failed in a row: the backoff before the next one grows with it.
    private var failures = 0
    private var connectionTask: Task<Void, Never>?

    init(configuration: SurrealConfiguration, logger: Logger, index: Int) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "connection"] = "\(index)"
        self.logger = logger
        inUse = Gauge(label: SurrealClientMetrics.connectionsInUse, dimensions: [("pool", "ws-\(index)")])
    }

    func call(_ method: String, _ params: [SurrealValue]) async throws -> SurrealValue {
        let sender = try await ready()
        return try await send(request: method, params: params, through: sender)
    }

    func close() {
        let previous = state
        state = .closed
        connectionTask?.cancel()
        if case .ready(let send) = previous { send.finish() }
        if case .connecting(let waiters) = previous {
            for waiter in waiters.values { waiter.resume(throwing: SurrealError(.unavailable, "the client was closed")) }
        }
        failPending(SurrealError(.unavailable, "the client was closed"))
    }

    // MARK: Calls

    private func send(request method: String, params: [SurrealValue], through send: AsyncStream<[UInt8]>.Continuation) async throws -> SurrealValue {
        nextID += 1
        let id = nextID
        let timeout = configuration.requestTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        defer { timer.cancel() }
        inUse.record(pending.count + 1)
        let reply: SurrealValue = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                pending[id] = continuation
                if case .enqueued = send.yield(RPC.request(id: id, method: method, params: params)) { return }
                pending.removeValue(forKey: id)
                continuation.resume(throwing: SurrealError(.unavailable, "the connection closed before the request was sent"))
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
        return try RPC.result(of: reply)
    }

    private func deliver(_ bytes: [UInt8]) {
        guard let reply = try? CBOR.decode(bytes), let id = RPC.id(of: reply) else {
            logger.debug("ignored a message without a request id")
            return
        }
        pending.removeValue(forKey: id)?.resume(returning: reply)
        inUse.record(pending.count)
    }

    private func expire(_ id: Int64) {
        pending.removeValue(forKey: id)?.resume(throwing: SurrealError(.unavailable, "no answer within \(configuration.requestTimeout)"))
    }

    private func cancel(_ id: Int64) {
        pending.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    private func failPending(_ error: SurrealError) {
        let waiting = pending
        pending = [:]
        for continuation in waiting.values { continuation.resume(throwing: error) }
        inUse.record(0)
    }

    // MARK: Connection

    /// The sender of a signed-in connection, connecting first if needed.
    private func ready() async throws -> AsyncStream<[UInt8]>.Continuation {
        switch state {
        case .ready(let send): return send
        case .closed: throw SurrealError(.unavailable, "the client was closed")
        case .disconnected:
            state = .connecting(waiters: [:])
            let delay = backoff()
            // Detached: a task made here inherits the caller's task locals, and inside a
            // service group those include its graceful shutdown, on which the WebSocket
            // handler closes the connection. The connection lives until `close()`: a SIGTERM
            // must not take it from the batches still being written.
            connectionTask = Task.detached { await self.runConnection(after: delay) }
        case .connecting: break
        }
        nextWaiter += 1
        let waiter = nextWaiter
        let timeout = configuration.connectTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.connectTimedOut(waiter)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            if case .connecting(var waiters) = state {
                waiters[waiter] = continuation
                state = .connecting(waiters: waiters)
            } else if case .ready(let send) = state {
                continuation.resume(returning: send)
            } else {
                continuation.resume(throwing: SurrealError(.unavailable, "could not connect to \(configuration.endpoint)"))
            }
        }
    }

    private func connectTimedOut(_ waiter: Int) {
        guard case .connecting(var waiters) = state, let continuation = waiters.removeValue(forKey: waiter) else { return }
        state = .connecting(waiters: waiters)
        continuation.resume(throwing: SurrealError(.unavailable, "could not connect to \(configuration.endpoint) within \(configuration.connectTimeout)"))
    }

    /// Exponential backoff with half jitter (between half and all of the step), from 0 after a
    /// healthy connection up to 30 s.
    private func backoff() -> Duration {
        guard failures > 0 else { return .zero }
        let ceiling = min(30_000, 100 * (1 << min(failures, 9)))
        return .milliseconds(Int.random(in: ceiling / 2...ceiling))
    }

    private func runConnection(after delay: Duration) async {
        if delay > .zero { try? await Task.sleep(for: delay) }
        var wsConfiguration = WebSocketClientConfiguration(
            maxFrameSize: 128 * 1024 * 1024,
            additionalHeaders: [.secWebSocketProtocol: "cbor"],
            autoPing: .enabled(timePeriod: configuration.pingInterval))
        wsConfiguration.ignoreUncleanSSLShutdownErrors = true
        var reason = SurrealError(.unavailable, "the connection to \(configuration.endpoint) closed")
        do {
            try await WebSocketClient.connect(url: configuration.endpoint, configuration: wsConfiguration, tlsConfiguration: configuration.tls, logger: logger) {
                inbound, outbound, _ in
                let (stream, send) = AsyncStream.makeStream(of: [UInt8].self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await bytes in stream { try await outbound.writeBinaryMessage(ByteBuffer(bytes: bytes)) }
                    }
                    group.addTask {
                        for try await message in inbound.messages(maxSize: 128 * 1024 * 1024) {
                            if case .binary(var buffer) = message, let bytes = buffer.readBytes(length: buffer.readableBytes) {
                                await self.deliver(bytes)
                            }
                        }
                    }
                    try await self.handshake(send)
                    _ = try await group.next()
                    group.cancelAll()
                }
            }
        } catch let error as SurrealError {
            reason = error
        } catch is CancellationError {
            reason = SurrealError(.unavailable, "the client was closed")
        } catch {
            reason = SurrealError.connecting(to: configuration.endpoint, error)
        }
        connectionEnded(reason)
    }

    /// Signs in and selects namespace and database; then the connection is ready for callers.
    private func handshake(_ send: AsyncStream<[UInt8]>.Continuation) async throws {
        if let credentials = configuration.credentials {
            _ = try await self.send(request: "signin", params: [credentials.signinParams], through: send)
        }
        // The first `use` of a new namespace or database defines it; pooled connections opening
        // together can conflict on that, and the conflict is safe to retry.
        var attempt = 0
        while true {
            do {
                _ = try await self.send(request: "use", params: [.string(configuration.namespace), .string(configuration.database)], through: send)
                break
            } catch let error as SurrealError where error.kind == .conflict && attempt < 6 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...(20 << attempt))))
            }
        }
        guard case .connecting(let waiters) = state else { throw CancellationError() }
        state = .ready(send)
        failures = 0
        logger.debug("connected", metadata: ["endpoint": "\(configuration.endpoint)"])
        for waiter in waiters.values { waiter.resume(returning: send) }
    }

    private func connectionEnded(_ error: SurrealError) {
        let wasReady: Bool
        switch state {
        case .closed:
            failPending(error)
            return
        case .ready(let send):
            send.finish()
            wasReady = true
        case .connecting(let waiters):
            for waiter in waiters.values { waiter.resume(throwing: error) }
            wasReady = false
        case .disconnected:
            wasReady = false
        }
        failures = wasReady ? 0 : failures + 1
        state = .disconnected
        failPending(SurrealError([.authentication, .tls].contains(error.kind) ? error.kind : .unavailable,
                                 wasReady ? "the connection dropped: \(error.message)" : error.message))
        logger.debug("connection ended", metadata: ["reason": "\(error)", "failures": "\(failures)"])
    }
}
