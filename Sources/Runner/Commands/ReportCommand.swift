import EmbedStarApp
import ArgumentParser
import AsyncHTTPClient
import EmbedStarCore
import EmbedStarReport
import Foundation

/// `embed-star report`: the weekly and monthly checks in one page.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a page of the backlog, failures by reason, service health, embedding quality and a map of the stars.",
        discussion: """
            Reads every stored repo twice (a page at a time) and embeds a seeded sample of descriptions as queries \
            (--sample, default 1,000). With --metrics-url it also reads a running instance's /metrics twice, \
            --metrics-window seconds apart, for rates. The page is one self-contained HTML file.
            """
    )

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Where the HTML page goes.")
    var out = "report.html"

    @Flag(name: .long, help: "Print every figure as JSON on standard output (the page is still written).")
    var json = false

    @Option(name: .long, help: "A running instance's metrics endpoint, e.g. http://127.0.0.1:9090/metrics.")
    var metricsURL: String?

    @Option(name: .long, help: "Seconds between the two scrapes of --metrics-url (0: one scrape, totals since the instance started).")
    var metricsWindow: Double = 10

    @Option(name: .long, help: "Descriptions embedded as queries for self-retrieval.")
    var sample = 1_000

    @Option(name: .long, help: "Repos on the map (and compared pairwise for near-duplicates).")
    var mapSize = 5_000

    @Option(name: .long, help: "The sampling seed: the same seed samples the same repos.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Cosine from which repos with different names count as near-duplicates.")
    var duplicateThreshold = 0.96

    func validate() throws {
        guard (0...100_000).contains(sample) else { throw ValidationError("--sample must be between 0 and 100000") }
        guard (0...20_000).contains(mapSize) else { throw ValidationError("--map-size must be between 0 and 20000") }
        guard (0.5...1).contains(duplicateThreshold) else { throw ValidationError("--duplicate-threshold must be between 0.5 and 1") }
        guard (0...3600).contains(metricsWindow) else { throw ValidationError("--metrics-window must be between 0 and 3600 seconds") }
        if let metricsURL {
            guard let url = URL(string: metricsURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--metrics-url must be an http(s) address, e.g. http://127.0.0.1:9090/metrics")
            }
        }
    }

    func run() async throws {
        try await runCommand { logger in
            let report = try await options.withRuntime(logger: logger) { runtime in
                let service = try await readService()
                _ = try await runtime.openStore()
                var settings = ReportOptions()
                settings.sampleSize = sample
                settings.mapSize = mapSize
                settings.seed = seed
                settings.duplicateThreshold = duplicateThreshold
                let configuration = runtime.configuration.settings
                let sources = ReportSources(store: runtime.store, storeName: configuration.store, provider: runtime.provider,
                                            providerName: configuration.provider, text: configuration.text, service: service)
                return try await ReportBuilder(sources: sources, options: settings, logger: logger).build()
            }
            let page = try ReportPage.render(report)
            let target = URL(fileURLWithPath: out, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            do {
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(page.utf8).write(to: target, options: .atomic)
            } catch {
                throw CLIError.failure("cannot write the report to \(target.path): \(error.localizedDescription)")
            }
            if json {
                print(String(decoding: try report.json(), as: UTF8.self))
            } else {
                let retrieval = report.quality.selfRetrieval.map { String(format: "self-retrieval top 10 %.1f%%", $0.top10 * 100) } ?? "self-retrieval not measured"
                print("""
                    report written to \(target.path)
                    \(report.backlog.total) repos: \(report.backlog.embedded) embedded, \(report.backlog.pending) pending, \(report.backlog.failed) failed; \
                    \(retrieval); \(report.quality.outliers.count) outliers; \(report.quality.nearDuplicates.groups.count) near-duplicate groups
                    """)
            }
        }
    }

    /// The service section: two scrapes of `--metrics-url`, or what could not be seen.
    private func readService() async throws -> Report.Service {
        guard let metricsURL else { return .unseen }
        let shown = Self.redacted(metricsURL)
        do {
            if metricsWindow == 0 { return Report.Service.from(try await scrape(metricsURL), since: nil, source: shown) }
            let first = try await scrape(metricsURL)
            try await Task.sleep(for: .milliseconds(Int(metricsWindow * 1000)))
            return Report.Service.from(try await scrape(metricsURL), since: first, source: shown)
        } catch let error as CancellationError {
            throw error
        } catch {
            var service = Report.Service.unseen
            service.source = shown
            service.note = "not measured: \(shown) did not answer (\(error))"
            return service
        }
    }

    private func scrape(_ url: String) async throws -> MetricsScrape {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        guard response.status.code == 200 else { throw CLIError.failure("HTTP \(response.status.code)") }
        let body = try await response.body.collect(upTo: 16 << 20)
        return MetricsScrape(text: String(buffer: body))
    }

    /// The address without user and password.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(the metrics address)" }
        if components.user != nil || components.password != nil {
            components.user = nil
            components.password = nil
        }
        return components.string ?? "(the metrics address)"
    }
}
