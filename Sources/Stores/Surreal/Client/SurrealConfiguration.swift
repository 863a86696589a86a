import Foundation

/// How to reach and enter a SurrealDB database.
public struct SurrealConfiguration: Sendable {
    public enum Scheme: String, Sendable {
        case ws, wss, http, https
        public var isWebSocket: Bool { self == .ws || self == .wss }
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
        self.scheme = scheme
        self.endpoint = endpoint
        self.namespace = namespace
        self.database = database
        self.credentials = credentials
    }
}
