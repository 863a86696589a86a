import EmbedStarApp
import EmbedStarCore
import EmbedStarLocal
import EmbedStarReport
import EmbedStarSQLiteStore
import Foundation
import Logging
import Testing

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Rejects every text holding `marker`, as a provider rejects an input it cannot take.
private struct RejectingProvider: EmbeddingProvider {
    let inner: LocalProvider
    let marker: String
    var model: ModelInfo { inner.model }
    func prepare() async throws -> ModelInfo { try await inner.prepare() }
    func tokenCount(_ text: String) -> Int { inner.tokenCount(text) }
    func health() async -> ComponentHealth { await inner.health() }
    func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        let bad = texts.indices.filter { texts[$0].contains(marker) }
        if !bad.isEmpty { throw EmbeddingError(.invalidInput(indices: bad), "input \(bad[0]) holds content the model refuses (policy 4711)") }
        return try await inner.embed(texts, mode: mode)
    }
}

/// The report on the quick start's data (2,050 repos) embedded by the real model into SQLite, with
/// three faults planted: a corrupted vector, a repo copied under another name, a provider rejection.
/// The page is then opened in Debian's chromium.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] != nil, "needs the model installed (scripts/test)"))
struct RealModelReportTests {
    @Test func theReportFindsWhatWasPlanted() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var repos = try GitHubStarred.parse(Data(contentsOf: packageRoot.appendingPathComponent("examples/stars.json")), source: "stars.json").repos
        #expect(repos.count == 2_050)
        let original = try #require(repos.last { $0.description != nil && $0.topics.count > 0 })
        var copy = original
        copy.id = RepoID("repo:report-copy")
        copy.githubID = 999_999_001
        // A mirror under another owner: the same project, starred twice.
        copy.fullName = "mirror-org/\(original.name)"
        copy.owner = Repo.Owner(login: "mirror-org")
        repos.append(copy)
        let poisoned = Repo(id: RepoID("repo:report-poison"), githubID: 999_999_002, fullName: "mallory/poison", description: "FORBIDDEN-CONTENT here",
                            stars: 1, language: "Python")
        repos.append(poisoned)

        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        try await store.upsert(repos)
        var providerConfiguration = LocalProvider.Configuration()
        providerConfiguration.threads = ProcessInfo.processInfo.activeProcessorCount
        let local = try LocalProvider(configuration: providerConfiguration, searchFrom: [packageRoot])
        let provider = RejectingProvider(inner: local, marker: "FORBIDDEN-CONTENT")
        var configuration = PipelineConfiguration()
        configuration.batchSize = 64
        configuration.parallelWorkers = 2
        configuration.maxAttempts = 1
        let pipeline = try await Pipeline.start(provider: provider, providerName: "local", store: store, configuration: configuration,
                                                instanceID: "report", logger: Logger(label: "report"))
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == 2_051 && summary.failed == 1)

        // A corrupted vector: random values of the right length where the model's vector was.
        let corrupted = repos[100]
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<384).map { _ in Float.random(in: -1...1, using: &generator) }
        let hex = noise.map { String(format: "%08x", $0.bitPattern.byteSwapped) }.joined()
        try await store.execute("UPDATE repo_vector SET vector = X'\(hex)' WHERE repo = (SELECT seq FROM repo WHERE id = '\(corrupted.id.rawValue)')")

        let sources = ReportSources(store: store, storeName: "sqlite", provider: provider, providerName: "local")
        let report = try await ReportBuilder(sources: sources).build()
        let retrieval = try #require(report.quality.selfRetrieval)
        print("""
            report on \(report.backlog.total) repos: self-retrieval top 1 \(retrieval.top1), top 10 \(retrieval.top10) of \(retrieval.queries); \
            \(report.quality.outliers.count) outliers (threshold \(report.quality.outliers.threshold ?? 0)); \
            \(report.quality.nearDuplicates.groups.count) near-duplicate groups; \(String(format: "%.1f", report.timings.totalSeconds)) s \
            (\(String(format: "%.1f", report.timings.embedSeconds)) s embedding \(report.timings.embeddedTexts) texts)
            """)
        #expect(report.backlog.total == 2_052 && report.backlog.embedded == 2_051 && report.backlog.failed == 1)
        #expect(retrieval.queries == 1_000)
        #expect(retrieval.top10 >= 0.9, "self-retrieval top 10 is \(retrieval.top10)")
        #expect(report.quality.outliers.items.first?.repo == corrupted.fullName, "the corrupted vector is the furthest outlier")
        let pair = Set([original.fullName, copy.fullName])
        let group = report.quality.nearDuplicates.groups.first { pair.isSubset(of: Set($0.repos)) }
        #expect(group != nil, "the copy and its original are near-duplicates")
        let rejection = report.failures.groups.first { $0.repos.contains(poisoned.fullName) }
        #expect(rejection?.reason == "rejected by the provider: input # holds content the model refuses (policy #)")
        #expect(rejection?.failed == 1)

        // The page, in a real browser.
        let output = packageRoot.appendingPathComponent(".embed-star")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let page = output.appendingPathComponent("report.html")
        try Data(try ReportPage.render(report).utf8).write(to: page)
        try report.json().write(to: output.appendingPathComponent("report.json"))
        let screenshot = output.appendingPathComponent("report.png")
        try? FileManager.default.removeItem(at: screenshot)
        let browser = try Browser.open(page, screenshot: screenshot)
        print("\(browser.version): \(browser.points) points, \(browser.consoleErrors.count) console errors, screenshot \(screenshot.path)")
        #expect(browser.consoleErrors.isEmpty, "\(browser.consoleErrors)")
        #expect(browser.points == report.map.points && report.map.points == 2_051, "one point per sampled repo")
        #expect(browser.dom.contains(corrupted.fullName), "the outlier is on the rendered page")
        let size = try FileManager.default.attributesOfItem(atPath: screenshot.path)[.size] as? Int ?? 0
        #expect(size > 20_000, "the screenshot has content (\(size) bytes)")
        await store.shutdown()
    }

    /// The console check can fail: a page that logs an error is caught.
    @Test func aConsoleErrorIsSeen() throws {
        let page = FileManager.default.temporaryDirectory.appendingPathComponent("console-\(UUID().uuidString).html")
        defer { try? FileManager.default.removeItem(at: page) }
        try Data("<!DOCTYPE html><html><body><script>console.error('planted failure')</script><svg><circle class=\"point\"/></svg></body></html>".utf8).write(to: page)
        let browser = try Browser.open(page, screenshot: nil)
        #expect(browser.consoleErrors.contains { $0.contains("planted failure") }, "\(browser.consoleErrors)")
        #expect(browser.points == 1)
    }
}

/// Debian's chromium, headless: the DOM after rendering, console messages, a screenshot.
struct Browser {
    var version: String
    var dom: String
    var consoleErrors: [String]
    var points: Int

    static func open(_ page: URL, screenshot: URL?) throws -> Browser {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", "--user-data-dir=\(profile.path)",
                      "--enable-logging=stderr", "--v=1", "--virtual-time-budget=3000"]
        let version = try run(["--version"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let dumped = try run(common + ["--dump-dom", page.absoluteString])
        if let screenshot {
            _ = try run(common + ["--window-size=1200,4600", "--hide-scrollbars", "--screenshot=\(screenshot.path)", page.absoluteString])
        }
        // Chromium prints every console message at verbosity 1 (`INFO:CONSOLE`), without its level.
        // The page runs no script, so any message at all (a failed load, a blocked resource, a
        // parse problem) counts.
        let errors = dumped.err.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        return Browser(version: version, dom: dumped.out, consoleErrors: errors,
                       points: dumped.out.components(separatedBy: "class=\"point\"").count - 1)
    }

    static func run(_ arguments: [String]) throws -> (out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["chromium"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes while it runs (a full pipe would stall it).
        let errData = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let errText = String(decoding: errData.data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw BrowserError(description: "chromium \(arguments.last ?? "") exited with \(process.terminationStatus): \(errText.suffix(2000))")
        }
        return (String(decoding: outData, as: UTF8.self), errText)
    }

    private final class Box: @unchecked Sendable { var data = Data() }
}

struct BrowserError: Error, CustomStringConvertible {
    var description: String
}
