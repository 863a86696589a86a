/// The client's metrics (swift-metrics; labelled by `pool`), with the help lines a Prometheus
/// exposition shows for them.
public enum SurrealClientMetrics {
    public static let connectionsInUse = "surreal_pool_connections_in_use"
    public static let waits = "surreal_pool_waits_total"
    public static let timeouts = "surreal_pool_timeouts_total"
    public static let size = "surreal_pool_size"

    /// Name and help of each.
    public static let descriptions: [(name: String, help: String)] = [
        (connectionsInUse, "SurrealDB connections (or requests) in use."),
        (waits, "Calls that waited for a pooled SurrealDB connection."),
        (timeouts, "Calls that gave up waiting for a pooled SurrealDB connection."),
        (size, "Size of the SurrealDB connection pool."),
    ]
}
