import EmbedStarCore
import SurrealClient

extension StoreFactory {
    /// `store: surreal`: SurrealDB over WebSocket or HTTP.
    public static let surreal = StoreFactory(
        name: "surreal",
        summary: "SurrealDB (ws://, wss://, http://, https://): event-fed pending queue, leases, conditional writes",
        configuration: SurrealStore.Configuration.self,
        metrics: SurrealClientMetrics.descriptions.map { MetricDescription($0.name, help: $0.help) }
    ) { configuration, context in
        try SurrealStore(configuration: configuration, instanceID: context.instanceID, logger: context.logger)
    }
}

extension SurrealError: RetryableError {}
