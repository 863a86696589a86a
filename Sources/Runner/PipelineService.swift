import EmbedStarApp
import Dispatch
import EmbedStarCore
import Foundation
import Logging
import ServiceLifecycle

/// Runs the pipeline as a service: SIGTERM/SIGINT stop the claiming, batches in flight finish,
/// and what did not finish is released by the pipeline.
struct PipelineService: Service {
    enum Mode { case run, backfill, batchAPI(BatchAPISettings) }

    /// Prepares store and provider and returns the pipeline (``Runtime/startPipeline(activity:)``);
    /// runs inside the service group, so the monitoring server already answers meanwhile and a
    /// signal during a long start (a provider that is down) ends it.
    let start: @Sendable () async throws -> Pipeline
    let mode: Mode
    var onStart: @Sendable (Pipeline) -> Void = { _ in }
    let onBatch: @Sendable (PipelineSummary) -> Void
    let onFinish: @Sendable (PipelineSummary) -> Void

    func run() async throws {
        let pipeline: Pipeline
        do {
            pipeline = try await cancelWhenGracefulShutdown(start)
        } catch where Task.isShuttingDownGracefully {
            return  // a signal came while starting: nothing was claimed yet
        }
        onStart(pipeline)
        let stop = StopSignal()
        try await withGracefulShutdownHandler {
            let summary: PipelineSummary
            switch mode {
            case .run: summary = try await pipeline.run(stop: stop, onBatch: onBatch)
            case .backfill: summary = try await pipeline.backfill(stop: stop, onBatch: onBatch)
            case .batchAPI(let settings): summary = try await pipeline.batchBackfill(settings, stop: stop) { onBatch($0.summary) }
            }
            onFinish(summary)
        } onGracefulShutdown: {
            stop.trigger()
        }
    }

    /// Runs `service` after `others` (the monitoring server, the backlog refresher) until it
    /// ends or a signal stops it. The group starts services in order and stops them in reverse:
    /// monitoring is up before the pipeline starts and stays up until its batches are written.
    static func runGroup(_ service: PipelineService, after others: [any Service] = [], logger: Logger) async throws {
        var configuration = ServiceGroupConfiguration(
            services: others.map { .init(service: $0) } + [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // Batches in flight get this long to finish; then they are cancelled, and the pipeline
        // releases their claims.
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        configuration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: configuration)
        let impatience = SecondSignal(logger: logger)
        defer { impatience.cancel() }
        try await group.run()
    }
}

/// A second SIGTERM or SIGINT during a graceful shutdown ends the process at once (exit status
/// 128 + the signal), as a user pressing Ctrl-C twice expects. Nothing is corrupted: every
/// store write is one transaction that either happened or did not; the leases of unfinished
/// repos run out and the repos are claimed again.
final class SecondSignal: @unchecked Sendable {  // the sources are only touched on `queue`
    private let queue = DispatchQueue(label: "embed-star.signals")
    private var sources: [any DispatchSourceSignal] = []
    private var seen = 0

    init(logger: Logger) {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)  // delivered to the dispatch sources instead of killing the process
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in
                seen += 1
                guard seen >= 2 else {
                    logger.notice("signal received: stopping once the batches in flight are written; a second signal stops at once",
                                  metadata: ["signal": "\(number)"])
                    return
                }
                logger.warning("second signal: stopping at once; unfinished repos stay pending until their leases run out",
                               metadata: ["signal": "\(number)"])
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        queue.sync { sources.forEach { $0.cancel() } }
    }
}
