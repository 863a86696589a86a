import EmbedStarConfig
import EmbedStarCore
import Foundation
import SurrealClient

extension SurrealStore {
    public struct Configuration: PluginConfiguration {
        /// `ws://`, `wss://`, `http://` or `https://`, with or without `/rpc` (`DB_URL`).
        public var url = "ws://localhost:8000"
        /// The user and password to sign in with; both empty for a server without authentication.
        public var user: String? = "root"
        public var pass: String? = "root"
        /// Sign in as a namespace or database user instead of a root user.
        public var authLevel = AuthLevel.root
        public var namespace = "gitstars"
        public var database = "stars"
        /// Connections (WebSocket) or concurrent requests (HTTP) (`POOL_SIZE`).
        public var poolSize = 10
        public var poolWaitSeconds = 30.0
        public var connectTimeoutSeconds = 10.0
        public var requestTimeoutSeconds = 60.0
        /// The collector's table.
        public var table = "repo"
        /// Fields whose change makes a repo pending again (embed-star's own fields never do).
        public var watchedFields = SurrealStore.collectorFields
        /// PEM file of CAs to trust for `wss://` and `https://` besides the system's (a private CA).
        public var tlsCAFile: String?
        /// Refuses plain `ws://` and `http://` to any host but this machine's loopback.
        public var requireTLS = false
        /// Guards against storage that lets two concurrent writes of one record both commit
        /// (claims one at a time per instance, read back after they commit, none during a sweep;
        /// the queue's indexes and counts checked when idle). On by default: SurrealDB 2.x, and
        /// 3.x on memory or SurrealKV storage, do that. Set false only for a 3.x server on
        /// RocksDB or TiKV; 2.x keeps them whatever this says.
        public var lostWriteGuards = true
        /// On 3.x, vector writes skip the repo table's events while nothing but embed-star
        /// watches the table (``QuietWriteState``); false: they always fire them (2.x always does).
        public var quietWrites = true

        public enum AuthLevel: String, Sendable, Decodable {
            case root, namespace, database
        }

        public init() {}

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case url, user, pass, authLevel = "auth_level", namespace, database, poolSize = "pool_size"
            case poolWaitSeconds = "pool_wait_seconds", connectTimeoutSeconds = "connect_timeout_seconds"
            case requestTimeoutSeconds = "request_timeout_seconds", table, watchedFields = "watched_fields"
            case tlsCAFile = "tls_ca_file", requireTLS = "require_tls", lostWriteGuards = "lost_write_guards"
            case quietWrites = "quiet_writes"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Configuration()
            try c.fill(&url, .url)
            let givenUser = try c.decodeIfPresent(String.self, forKey: .user)
            let givenPass = try c.decodeIfPresent(String.self, forKey: .pass)
            user = givenUser ?? d.user
            pass = givenPass ?? d.pass
            // Credentials in the URL (DB_URL=ws://user:pass@host) are used, never dropped; with
            // `user`/`pass` also set to something else, which one was meant is unclear: refused.
            if let inURL = SurrealConfiguration.credentials(in: url) {
                if (givenUser != nil && givenUser != inURL.user) || (givenPass != nil && inURL.password != nil && givenPass != inURL.password) {
                    throw ConfigError.invalid(CodingKeys.url.rawValue, "carries credentials and user/pass name others; set them in one place only", in: decoder)
                }
                user = inURL.user
                pass = inURL.password ?? givenPass
            }
            try c.fill(&authLevel, .authLevel)
            try c.fill(&namespace, .namespace)
            try c.fill(&database, .database)
            try c.fill(&poolSize, .poolSize)
            try c.fill(&poolWaitSeconds, .poolWaitSeconds)
            try c.fill(&connectTimeoutSeconds, .connectTimeoutSeconds)
            try c.fill(&requestTimeoutSeconds, .requestTimeoutSeconds)
            try c.fill(&table, .table)
            try c.fill(&watchedFields, .watchedFields)
            tlsCAFile = try c.decodeIfPresent(String.self, forKey: .tlsCAFile).flatMap { $0.isEmpty ? nil : decoder.configurationPath($0) }
            try c.fill(&requireTLS, .requireTLS)
            try c.fill(&lostWriteGuards, .lostWriteGuards)
            try c.fill(&quietWrites, .quietWrites)
            func fail(_ key: CodingKeys, _ message: String) -> ConfigError { .invalid(key.rawValue, message, in: decoder) }
            let target: SurrealConfiguration
            do {
                target = try SurrealConfiguration(url: url, namespace: namespace, database: database)
            } catch {
                throw fail(.url, error.message)
            }
            if requireTLS, !target.scheme.isEncrypted, !target.isLoopback {
                throw fail(.url, "is plain \(target.scheme.rawValue):// to \(target.host) and require_tls is on: use \(target.scheme.isWebSocket ? "wss" : "https")://, or reach the server on loopback")
            }
            if let tlsCAFile {
                var probe = target
                do { try probe.trust(caFile: tlsCAFile) } catch { throw fail(.tlsCAFile, error.message) }
            }
            guard (1...1000).contains(poolSize) else { throw fail(.poolSize, "must be between 1 and 1000, got \(poolSize)") }
            guard poolWaitSeconds > 0, connectTimeoutSeconds > 0, requestTimeoutSeconds > 0 else {
                throw fail(.requestTimeoutSeconds, "timeouts must be positive")
            }
            // Identifiers end up in statements (table and field names cannot be bound).
            for (key, name) in [(CodingKeys.table, table)] + watchedFields.map({ (CodingKeys.watchedFields, $0) }) where !SurrealStore.isIdentifier(name) {
                throw fail(key, "'\(name)' is not a plain identifier (letters, digits, underscores)")
            }
            guard !watchedFields.isEmpty else { throw fail(.watchedFields, "must name at least one field") }
            if user?.isEmpty == false, pass == nil || pass?.isEmpty == true { throw fail(.pass, "is needed with user") }
        }

        func client() throws -> SurrealConfiguration {
            var credentials: SurrealConfiguration.Credentials?
            // An empty user signs in as nobody (a server without authentication).
            if let user, !user.isEmpty, let pass {
                switch authLevel {
                case .root: credentials = .init(user: user, password: pass)
                case .namespace: credentials = .init(user: user, password: pass, namespace: namespace)
                case .database: credentials = .init(user: user, password: pass, namespace: namespace, database: database)
                }
            }
            var configuration = try SurrealConfiguration(url: url, namespace: namespace, database: database, credentials: credentials)
            configuration.poolSize = poolSize
            configuration.poolWaitTimeout = .seconds(poolWaitSeconds)
            configuration.connectTimeout = .seconds(connectTimeoutSeconds)
            configuration.requestTimeout = .seconds(requestTimeoutSeconds)
            if let tlsCAFile { try configuration.trust(caFile: tlsCAFile) }
            return configuration
        }
    }

    /// The fields the collector writes.
    public static let collectorFields = [
        "github_id", "name", "full_name", "description", "url", "stars", "language", "owner", "is_private", "topics", "created_at", "updated_at",
    ]

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && CharacterSet.letters.contains(first)) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    }
}
