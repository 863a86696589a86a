import EmbedStarConfig
import EmbedStarCore
import Foundation

extension SQLiteStore {
    public struct Configuration: PluginConfiguration {
        /// The database file, relative to the configuration file's folder; created when missing.
        public var path = ".embed-star/stars.sqlite"
        /// How long a statement waits for another process's write lock before failing.
        public var busyTimeoutSeconds = 10.0

        public init(path: String = ".embed-star/stars.sqlite", busyTimeoutSeconds: Double = 10) {
            self.path = path
            self.busyTimeoutSeconds = busyTimeoutSeconds
        }

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case path, busyTimeoutSeconds = "busy_timeout_seconds"
        }

        /// `--db-url` names the file (one connection for writes: no `--pool-size`).
        public static var flagKeys: [PluginFlag: String] { [.database: CodingKeys.path.rawValue] }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&path, .path)
            try c.fill(&busyTimeoutSeconds, .busyTimeoutSeconds)
            guard !path.isEmpty else { throw ConfigError.invalid(CodingKeys.path.rawValue, "must name a file", in: decoder) }
            guard busyTimeoutSeconds >= 0, busyTimeoutSeconds.isFinite else {
                throw ConfigError.invalid(CodingKeys.busyTimeoutSeconds.rawValue, "must be zero or more seconds, got \(busyTimeoutSeconds)", in: decoder)
            }
        }
    }
}
