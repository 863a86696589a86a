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

extension ComponentHealth {
    /// `check`'s answer, or `.down` when it has none within `limit`: a health endpoint must
    /// answer while a backend hangs (a connection that is refused may be retried until the
    /// request's own, much longer, timeout).
    public static func within(_ limit: Duration, _ check: @escaping @Sendable () async -> ComponentHealth) async -> ComponentHealth {
        await withDeadline(limit, check) ?? ComponentHealth(status: .down, detail: "no answer within \(limit.seconds) s", latency: limit)
    }
}
