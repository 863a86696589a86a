import EmbedStarConfig
import Foundation

/// The whole file: which plugins, the pipeline, and each plugin's raw section.
public struct EmbedStarSettings: Decodable, Sendable {
    public var provider: String
    public var store: String
    public var pipeline: PipelineConfiguration
    public var text: TextConfiguration
    public var monitoring: MonitoringConfiguration
    public var resilience: ResilienceConfiguration
    public var providers: [String: RawConfig]
    public var stores: [String: RawConfig]

    enum CodingKeys: String, CodingKey {
        case provider, store, pipeline, text, monitoring, resilience, providers, stores, environments
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.decode(String.self, forKey: .provider)
        store = try c.decode(String.self, forKey: .store)
        pipeline = try c.decodeIfPresent(PipelineConfiguration.self, forKey: .pipeline) ?? PipelineConfiguration()
        text = try c.decodeIfPresent(TextConfiguration.self, forKey: .text) ?? TextConfiguration()
        monitoring = try c.decodeIfPresent(MonitoringConfiguration.self, forKey: .monitoring) ?? MonitoringConfiguration()
        resilience = try c.decodeIfPresent(ResilienceConfiguration.self, forKey: .resilience) ?? ResilienceConfiguration()
        providers = try c.decodeIfPresent([String: RawConfig].self, forKey: .providers) ?? [:]
        stores = try c.decodeIfPresent([String: RawConfig].self, forKey: .stores) ?? [:]
        _ = c.contains(.environments)  // overlaid by the loader; a known key
    }
}
