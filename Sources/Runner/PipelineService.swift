import EmbedStarCore
import Logging
import ServiceLifecycle

/// Runs the pipeline as a service: SIGTERM/SIGINT stop the claiming, batches in flight finish,
/// and what did not finish is released by the pipeline.
struct PipelineService: Service {
    enum Mode { case run, backfill }

    let pipeline: Pipeline
    let mode: Mode
    let onBatch: @Sendable (PipelineSummary) -> Void
    let onFinish: @Sendable (PipelineSummary) -> Void

    func run() async throws {
        let stop = StopSignal()
        try await withGracefulShutdownHandler {
            let summary: PipelineSummary
            switch mode {
            case .run: summary = try await pipeline.run(stop: stop, onBatch: onBatch)
            case .backfill: summary = try await pipeline.backfill(stop: stop, onBatch: onBatch)
            }
            onFinish(summary)
        } onGracefulShutdown: {
            stop.trigger()
        }
    }

    /// Runs `service` (and `others`, such as the monitoring server) until it ends or a signal stops it.
    static func runGroup(_ service: PipelineService, with others: [any Service] = [], logger: Logger) async throws {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)] + others.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // Batches in flight get this long to finish; then they are cancelled, and the pipeline
        // releases their claims.
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        configuration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }
}
