import NIOSSL

/// An error from SurrealDB or on the way to it.
public struct SurrealError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Could not connect, the connection dropped, or no answer in time: try again later.
        case unavailable
        /// Wrong credentials or not allowed.
        case authentication
        /// The server refused the request (an RPC error).
        case rpc
        /// A statement failed (`status: "ERR"`), with the server's message.
        case statement
        /// A transaction conflicted with another one: running it again may succeed.
        case conflict
        /// The answer was not what the protocol promises.
        case protocolViolation = "protocol"
        /// No pooled connection came free in time.
        case poolTimeout = "pool_timeout"
        /// The server runs a SurrealDB version the store does not speak.
        case unsupportedServer = "unsupported_server"
        /// TLS could not be set up or the server's certificate is not trusted: not retried.
        case tls
    }

    public var kind: Kind
    public var message: String
    /// The RPC error code, when the server sent one.
    public var code: Int64?

    public init(_ kind: Kind, _ message: String, code: Int64? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
    }

    /// True when the same request may succeed later.
    public var isRetryable: Bool { [.unavailable, .conflict, .poolTimeout].contains(kind) }

    public var description: String { "SurrealDB \(kind.rawValue) error: \(message)" }

    /// An error on the way to the server: TLS failures (an untrusted certificate, a name that does
    /// not match) say what to check and are not retried; anything else is unavailability.
    static func connecting(to endpoint: String, _ error: any Error) -> SurrealError {
        let text = String(describing: error)
        let lowered = text.lowercased()
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
            || lowered.contains("certificate") || lowered.contains("handshakefailed") || lowered.contains("niossl") || lowered.contains("boringssl") {
            var hint = ""
            if lowered.contains("certificate_verify_failed") || lowered.contains("unable to get local issuer") || lowered.contains("self signed") || lowered.contains("self-signed") {
                hint = "the server's certificate is not signed by a trusted CA (set tls_ca_file to the CA's PEM file); "
            } else if lowered.contains("hostname") || lowered.contains("unableToValidateCertificate".lowercased()) {
                hint = "the server's certificate does not name the host in the URL; "
            }
            return SurrealError(.tls, "TLS with \(endpoint) failed: \(hint)\(text)")
        }
        return SurrealError(.unavailable, "\(endpoint): \(text)")
    }

    /// Statement and RPC errors whose message says the transaction conflicted are retryable.
    static func fromServer(_ kind: Kind, _ message: String, code: Int64? = nil) -> SurrealError {
        let lowered = message.lowercased()
        if lowered.contains("conflict") && (lowered.contains("transaction") || lowered.contains("retried")) || lowered.contains("can be retried") {
            return SurrealError(.conflict, message, code: code)
        }
        if lowered.contains("problem with authentication") || lowered.contains("not enough permissions") || lowered.contains("anonymous access") {
            return SurrealError(.authentication, message, code: code)
        }
        return SurrealError(kind, message, code: code)
    }
}
