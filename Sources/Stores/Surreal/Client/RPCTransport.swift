/// Carries RPC calls to the server. Implementations: HTTP (one POST per call) and WebSocket
/// (a pool of long-lived connections, calls multiplexed by id).
protocol RPCTransport: Sendable {
    /// Sends one call and returns its result; throws ``SurrealError``.
    func call(_ method: String, _ params: [SurrealValue]) async throws -> SurrealValue
    func close() async
}
