import EmbedStarApp
import ArgumentParser
import EmbedStarBuiltInPlugins
import EmbedStarCore
import EmbedStarMonitoring
import Foundation
import ServiceLifecycle
import Synchronization

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the service: embed repos as they become pending, until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await runCommand { logger in
            let registry = MonitoringMetrics.bootstrap()
            try await options.withRuntime(logger: logger) { runtime in
                let settings = runtime.configuration.settings
                let activity = PipelineActivity()
                var monitoring: MonitoringState?
                var others: [any Service] = []
                if settings.monitoring.enabled {
                    let state = MonitoringState(
                        components: .init(store: runtime.store, storeName: settings.store, provider: runtime.provider,
                                          providerName: settings.provider, instanceID: runtime.instanceID, breaker: runtime.provider.breaker),
                        activity: activity, registry: registry, metricHelp: BuiltInPlugins.registry.metricHelp, livenessTimeout: .seconds(settings.monitoring.livenessTimeoutSeconds))
                    others.append(MonitoringServer.application(state, configuration: settings.monitoring, logger: logger))
                    others.append(StatsRefresher(state: state, interval: .seconds(settings.monitoring.statsIntervalSeconds)))
                    logger.info("monitoring on http://\(settings.monitoring.bind):\(settings.monitoring.port) (/livez /readyz /health /metrics)")
                    monitoring = state
                }
                let service = PipelineService(
                    start: { try await runtime.startPipeline(activity: activity) }, mode: .run,
                    onStart: { [monitoring] pipeline in
                        monitoring?.pipelineStarted(model: pipeline.modelIdentity)
                        logger.info("embed-star running", metadata: [
                            "provider": "\(settings.provider)", "store": "\(settings.store)", "model": "\(pipeline.modelIdentity)",
                            "workers": "\(settings.pipeline.parallelWorkers)", "instance": "\(runtime.instanceID)",
                        ])
                    },
                    onBatch: { _ in },
                    onFinish: { summary in
                        logger.info("embed-star stopped", metadata: ["embedded": "\(summary.embedded)", "unchanged": "\(summary.unchanged)"])
                    })
                try await PipelineService.runGroup(service, after: others, logger: logger)
            }
        }
    }
}

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Embed everything pending, show progress, print a summary, and exit."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false

    @Flag(name: .long, help: "Embed through the provider's batch API (OpenAI: half the price, within 24 hours); resumes the batches of an earlier run.")
    var batchAPI = false

    @Option(name: .long, help: "With --batch-api: texts per batch at most.")
    var batchLines = 10_000

    @Option(name: .long, help: "With --batch-api: batches waited for at once at most.")
    var batchJobs = 4

    @Option(name: .long, help: "With --batch-api: the longest wait between two looks at the batches, in seconds.")
    var batchPollSeconds = 60.0

    func validate() throws {
        guard batchLines >= 1, batchLines <= 50_000 else { throw ValidationError("--batch-lines must be between 1 and 50,000 (OpenAI's limit)") }
        guard batchJobs >= 1 else { throw ValidationError("--batch-jobs must be at least 1") }
        guard batchPollSeconds > 0 else { throw ValidationError("--batch-poll-seconds must be positive") }
    }

    func run() async throws {
        var settings = BatchAPISettings()
        settings.linesPerBatch = batchLines
        settings.jobsInFlight = batchJobs
        settings.pollUpTo = .seconds(batchPollSeconds)
        settings.pollFrom = min(settings.pollFrom, settings.pollUpTo)
        let mode: PipelineService.Mode = batchAPI ? .batchAPI(settings) : .backfill
        try await runCommand { logger in
            let report = try await options.withRuntime(logger: logger) { runtime in
                if batchAPI, !(runtime.provider.base is any BatchEmbeddingProvider) {
                    throw BatchAPIUnsupported(provider: runtime.configuration.settings.provider)
                }
                let pipeline = try await runtime.startPipeline()
                let before = try await runtime.store.stats(modelIdentity: pipeline.modelIdentity)
                let started = ContinuousClock.now
                let progress = Progress(total: before.pending, enabled: Console.stderrIsTerminal && !json)
                defer { progress.finish() }
                let finished = Mutex<PipelineSummary?>(nil)
                let service = PipelineService(start: { pipeline }, mode: mode, onBatch: { progress.add($0) },
                                              onFinish: { summary in finished.withLock { $0 = summary } })
                try await PipelineService.runGroup(service, logger: logger)
                let elapsed = ContinuousClock.now - started
                let after = try await runtime.store.stats(modelIdentity: pipeline.modelIdentity)
                return BackfillReport(summary: finished.withLock { $0 } ?? PipelineSummary(), seconds: elapsed.seconds,
                                      before: before, after: after, model: pipeline.modelIdentity)
            }
            print(json ? report.json : report.text)
        }
    }
}

struct BackfillReport: Encodable {
    var summary: PipelineSummary
    var seconds: Double
    var before: StoreStats
    var after: StoreStats
    var model: String

    var reposPerSecond: Double { seconds > 0 ? Double(summary.embedded + summary.unchanged) / seconds : 0 }

    var text: String {
        """
        Backfill done in \(String(format: "%.2f", seconds)) s with \(model): \
        \(summary.embedded) embedded, \(summary.unchanged) unchanged, \(summary.failed) failed, \
        \(summary.retrying) to retry, \(summary.conflicts) changed during the run \
        (\(String(format: "%.0f", reposPerSecond)) repos/s, \(summary.providerCalls) provider calls).
        Now: \(after.total) repos, \(after.embedded) embedded, \(after.pending) pending, \(after.failed) failed.
        """
    }

    var json: String {
        struct Output: Encodable {
            var summary: PipelineSummary
            var seconds: Double
            var reposPerSecond: Double
            var model: String
            var before: StoreStats
            var after: StoreStats
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let output = Output(summary: summary, seconds: seconds, reposPerSecond: reposPerSecond, model: model, before: before, after: after)
        return String(decoding: (try? encoder.encode(output)) ?? Data(), as: UTF8.self)
    }
}

/// A progress line on the terminal, redrawn at most ten times a second.
final class Progress: Sendable {
    private struct State {
        var done = 0
        var lastDraw = ContinuousClock.now - .seconds(1)
        var drew = false
    }

    private let total: Int
    private let enabled: Bool
    private let started = ContinuousClock.now
    // Batches report from several workers at once; the lock keeps counts and redraws whole.
    private let state = Mutex(State())

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func add(_ summary: PipelineSummary) {
        guard enabled else { return }
        state.withLock { state in
            state.done += summary.embedded + summary.unchanged + summary.failed
            let now = ContinuousClock.now
            guard now - state.lastDraw >= .milliseconds(100) else { return }
            state.lastDraw = now
            state.drew = true
            let rate = Double(state.done) / max((now - started).seconds, 0.001)
            let line = String(format: "\r%d/%d repos  %.0f/s ", state.done, total, rate)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func finish() {
        guard enabled, state.withLock({ $0.drew }) else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
