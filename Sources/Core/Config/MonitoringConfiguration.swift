import EmbedStarConfig
import Foundation

/// The monitoring server (`monitoring:`).
public struct MonitoringConfiguration: Decodable, Sendable, Hashable {
    public var port = 9090
    public var bind = "127.0.0.1"
    public var enabled = true
    /// `/livez` fails when no worker loop went round for this long (stuck workers).
    public var livenessTimeoutSeconds = 300
    /// How often the pending backlog gauge is refreshed from the store.
    public var statsIntervalSeconds = 15

    public init() {}

    enum CodingKeys: String, CodingKey {
        case port, bind, enabled, livenessTimeoutSeconds = "liveness_timeout_seconds", statsIntervalSeconds = "stats_interval_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.fill(&port, .port)
        try c.fill(&bind, .bind)
        try c.fill(&enabled, .enabled)
        try c.fill(&livenessTimeoutSeconds, .livenessTimeoutSeconds)
        try c.fill(&statsIntervalSeconds, .statsIntervalSeconds)
        guard (0...65_535).contains(port) else { throw ConfigError.invalid("port", "must be between 0 and 65535, got \(port)", in: decoder) }
        guard livenessTimeoutSeconds >= 1, statsIntervalSeconds >= 1 else {
            throw ConfigError.invalid("liveness_timeout_seconds", "intervals must be at least 1 second", in: decoder)
        }
    }
}
