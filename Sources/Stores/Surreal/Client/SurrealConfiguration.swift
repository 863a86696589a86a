import Foundation
import NIOSSL

/// How to reach and enter a SurrealDB database.
public struct SurrealConfiguration: Sendable {
    public enum Scheme: String, Sendable {
        case ws, wss, http, https
        public var isWebSocket: Bool { self == .ws || self == .wss }
        public var isEncrypted: Bool { self == .wss || self == .https }
    }

    /// Whether the host is this machine (`localhost`, 127.0.0.0/8, `::1`): plain connections
    /// to it never leave the machine.
    public var isLoopback: Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return bare == "localhost" || bare.hasSuffix(".localhost") || bare == "::1" || bare.hasPrefix("127.")
    }

    /// Also trusts the CAs in the PEM file at `path` (a private CA), besides the system's.
    public mutating func trust(caFile path: String) throws(SurrealError) {
        guard scheme.isEncrypted else {
            throw SurrealError(.tls, "a CA file (\(path)) is set, but \(Self.redacted(endpoint)) is not wss:// or https://")
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw SurrealError(.tls, "the CA file \(path) holds no PEM certificate that can be read (\(error))")
        }
        guard !certificates.isEmpty else { throw SurrealError(.tls, "the CA file \(path) holds no PEM certificate") }
        tls?.additionalTrustRoots.append(.certificates(certificates))
    }

    /// Who signs in: a root user, or a namespace or database user.
    public struct Credentials: Sendable {
        public var user: String
        public var password: String
        /// Set for a namespace (or database) user.
        public var namespace: String?
        /// Set (with `namespace`) for a database user.
        public var database: String?

        public init(user: String, password: String, namespace: String? = nil, database: String? = nil) {
            self.user = user
            self.password = password
            self.namespace = namespace
            self.database = database
        }
    }

    public var scheme: Scheme
    /// The `/rpc` endpoint, whatever path the URL was given with.
    public var endpoint: String
    /// The server's host name or address.
    public var host: String
    /// TLS for `wss://` and `https://` (nil for plain): the system's CAs, plus those of
    /// ``trust(caFile:)``.
    public var tls: TLSConfiguration?
    public var namespace: String
    public var database: String
    public var credentials: Credentials?
    public var connectTimeout: Duration = .seconds(10)
    public var requestTimeout: Duration = .seconds(30)
    /// Connections (WebSocket) or concurrent requests (HTTP).
    public var poolSize = 10
    /// How long a caller waits for a pooled connection while none comes free before giving up.
    /// A line that moves is waited out, however long it is.
    public var poolWaitTimeout: Duration = .seconds(30)
    /// WebSocket keepalive.
    public var pingInterval: Duration = .seconds(30)

    /// `url` without the password it may carry (`ws://user:***@host`), for messages and logs.
    public static func redacted(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let start = url.range(of: "://")?.upperBound, start < at else { return url }
        let userInfo = url[start..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }

    /// The user and password written into a URL (`ws://user:pass@host`), percent-decoded.
    public static func credentials(in url: String) -> (user: String, password: String?)? {
        guard let components = URLComponents(string: url), let user = components.user, !user.isEmpty else { return nil }
        return (user, components.password)
    }

    /// `url` is `ws://`, `wss://`, `http://` or `https://`, with or without `/rpc`.
    public init(url: String, namespace: String, database: String, credentials: Credentials? = nil) throws(SurrealError) {
        guard var components = URLComponents(string: url), let raw = components.scheme?.lowercased(),
              let scheme = Scheme(rawValue: raw), components.host?.isEmpty == false
        else {
            throw SurrealError(.protocolViolation, "'\(Self.redacted(url))' is not a SurrealDB URL (ws://, wss://, http:// or https:// with a host)")
        }
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        if !path.hasSuffix("/rpc") { path += "/rpc" }
        components.path = path
        components.user = nil
        components.password = nil
        guard let endpoint = components.string else {
            throw SurrealError(.protocolViolation, "'\(Self.redacted(url))' is not a valid URL")
        }
        let host = components.host ?? ""
        // The WebSocket client sends the host as the TLS server name (SNI), which TLS forbids
        // for an address: the handshake would fail on every connect.
        if scheme == .wss, host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) {
            throw SurrealError(.tls, "'\(Self.redacted(url))': wss:// needs a host name the server's certificate names, not an address (or use https:// to the address)")
        }
        self.scheme = scheme
        self.endpoint = endpoint
        self.host = host
        tls = scheme.isEncrypted ? .makeClientConfiguration() : nil
        self.namespace = namespace
        self.database = database
        self.credentials = credentials
    }
}
