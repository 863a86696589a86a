import Logging

/// A SurrealDB client: RPC over WebSocket or HTTP (the URL decides), signed in and in the
/// configured namespace and database. Safe to use from many tasks at once.
public final class SurrealClient: Sendable {
    public let configuration: SurrealConfiguration
    private let transport: any RPCTransport

    public init(configuration: SurrealConfiguration, logger: Logger = Logger(label: "surreal-client")) {
        self.configuration = configuration
        if configuration.scheme.isWebSocket {
            transport = WebSocketRPCTransport(configuration: configuration, logger: logger)
        } else {
            transport = HTTPRPCTransport(configuration: configuration)
        }
    }

    /// One RPC call.
    public func call(_ method: String, _ params: [SurrealValue] = []) async throws -> SurrealValue {
        try await transport.call(method, params)
    }

    /// Runs SurrealQL with bound variables; returns one result per statement. A failed statement
    /// throws ``SurrealError`` with the server's message.
    public func query(_ sql: String, _ variables: [String: SurrealValue] = [:]) async throws -> [SurrealValue] {
        try RPC.statementResults(try await call("query", [.string(sql), .object(variables)]))
    }

    /// The server's version, such as `surrealdb-3.2.4` (1.x and 2.x answer the same way).
    public func version() async throws -> String {
        let result = try await call("version")
        return result.string ?? result["version"]?.string ?? "unknown"
    }

    /// A cheap round trip.
    public func ping() async throws {
        _ = try await call("ping")
    }

    public func close() async {
        await transport.close()
    }
}

extension SurrealConfiguration.Credentials {
    /// The `signin` parameters for this user's level (root, namespace or database).
    var signinParams: SurrealValue {
        var fields: [String: SurrealValue] = ["user": .string(user), "pass": .string(password)]
        if let namespace { fields["ns"] = .string(namespace) }
        if let database { fields["db"] = .string(database) }
        return .object(fields)
    }
}
