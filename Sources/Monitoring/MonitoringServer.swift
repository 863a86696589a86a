import EmbedStarCore
import Hummingbird
import Logging
import ServiceLifecycle

/// The monitoring HTTP server and the backlog refresher, as services for the Runner's group.
public enum MonitoringServer {
    public static func application(_ state: MonitoringState, configuration: MonitoringConfiguration, logger: Logger) -> some ApplicationProtocol {
        Application(
            router: MonitoringRouter.make(state),
            configuration: .init(address: .hostname(configuration.bind, port: configuration.port), serverName: "embed-star"),
            logger: logger)
    }
}

/// Refreshes the backlog gauges every `interval` until shutdown; every second until they are
/// first published (the store prepared), so they appear as soon as they can.
public struct StatsRefresher: Service {
    let state: MonitoringState
    let interval: Duration

    public init(state: MonitoringState, interval: Duration) {
        self.state = state
        self.interval = interval
    }

    public func run() async throws {
        var published = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            published = await state.refreshStats() || published
            let pause = published ? interval : min(interval, .seconds(1))
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
    }
}

import Metrics
import Prometheus

public enum MonitoringMetrics {
    /// Routes swift-metrics into a Prometheus registry for `/metrics`. Once per process, before
    /// any metric is created.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
