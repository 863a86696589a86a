/// The state of one component (store or provider) as `/health` and `status` report it.
public struct ComponentHealth: Sendable, Hashable {
    public enum Status: String, Sendable {
        case up
        case degraded
        case down
    }

    public var status: Status
    /// What is wrong, in words for an operator. Never contains a secret.
    public var detail: String?
    public var latency: Duration?

    public init(status: Status, detail: String? = nil, latency: Duration? = nil) {
        self.status = status
        self.detail = detail
        self.latency = latency
    }

    public static let up = ComponentHealth(status: .up)
}
