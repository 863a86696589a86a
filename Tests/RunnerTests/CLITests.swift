import Foundation
import Testing

/// Runs the built `embed-star` executable as a user would and checks exit codes and output.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["EMBED_STAR_BIN"] { return URL(fileURLWithPath: path) }
        // Tests run from the build folder, next to the executable.
        var folder = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("embed-star").path), folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("embed-star")
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    /// Starts the executable; `environment` is added to a clean one (no inherited config variables).
    func start(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        process.currentDirectoryURL = directory ?? folder
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LOG_LEVEL": "info"]
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) throws -> Result {
        let (process, out, err) = try start(arguments, environment: environment, in: directory)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: folder)
    }
}

private let mockConfig = """
    provider: mock
    store: mock
    monitoring:
      port: 0
    pipeline:
      batch_size: ${BATCH_SIZE:-20}
      parallel_workers: 2
      poll_interval_ms: 50
    providers:
      mock:
        dimensions: 16
    stores:
      mock:
        seed_file: repos.json
        state_file: state.json
    """

private func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite(.serialized) struct CLITests {
    @Test func pluginsListsTheBuiltInPlugins() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let result = try cli.run(["plugins"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let providers = lines.drop { $0 != "providers:" }.dropFirst().prefix { $0.hasPrefix("  ") }.map { $0.split(separator: " ")[0] }
        let stores = lines.drop { $0 != "stores:" }.dropFirst().prefix { $0.hasPrefix("  ") }.map { $0.split(separator: " ")[0] }
        #expect(providers == ["example-compat", "local", "mock", "ollama", "openai", "together"])
        #expect(stores == ["mock", "sqlite", "surreal"])
    }

    /// `plugins --verbose` reads the keys off each plugin's configuration type; the README's
    /// configuration reference must name every one of them under the plugin's heading.
    @Test func readmeDocumentsEveryKeyOfEveryPlugin() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let result = try cli.run(["plugins", "--verbose"])
        #expect(result.status == 0)
        let readme = try String(contentsOf: CLI.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        var section: String?
        var checked = 0
        for line in result.stdout.split(separator: "\n").map(String.init) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("      "), !line.hasPrefix("        "), trimmed.hasSuffix(":") || trimmed.hasSuffix("(no keys)") {
                section = String(trimmed.split(separator: ":")[0])
                continue
            }
            guard line.hasPrefix("        "), let section else { continue }
            let key = String(trimmed.split(separator: " ")[0])
            let heading = "### `\(section)`"
            let body = readme.components(separatedBy: heading).dropFirst().first?.components(separatedBy: "\n### ").first
            #expect(body != nil, "README has no \(heading) section")
            #expect(body?.contains("`\(key)`") == true, "README's \(heading) does not document `\(key)`")
            checked += 1
        }
        #expect(checked > 40)
    }

    @Test func shippedConfigurationIsValidInTheDevEnvironmentAndHidesSecrets() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let result = try cli.run(["config", "--env", "dev"], environment: ["DB_PASS": "hunter2-secret", "OPENAI_API_KEY": "sk-live-123"], in: CLI.packageRoot)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("provider: mock"))
        #expect(result.stdout.contains("seed_file: examples/sample-repos.json"))
        #expect(!result.stdout.contains("hunter2-secret") && !result.stderr.contains("hunter2-secret"))
        #expect(!result.stdout.contains("sk-live-123") && !result.stderr.contains("sk-live-123"))
    }

    @Test func invalidConfigurationExitsTwoWithFileLineAndKey() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig.replacingOccurrences(of: "    dimensions: 16", with: "    dimensons: 16"))
        var result = try cli.run(["config"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("plugins.yaml:11:5: providers.mock: unknown key 'dimensons'; did you mean 'dimensions'?"))

        try cli.write("plugins.yaml", "provider: mock\nstore: [unclosed\n")
        result = try cli.run(["config"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("plugins.yaml:"))
        #expect(result.stderr.contains("invalid YAML"))

        try cli.write("plugins.yaml", mockConfig)
        result = try cli.run(["status", "--embedding-provider", "olama"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("unknown provider 'olama'"))
        #expect(result.stderr.contains("did you mean 'ollama'?"))
        #expect(result.stderr.contains("registered providers: example-compat, local, mock, ollama, openai, together"))

        result = try cli.run(["backfill"], environment: ["BATCH_SIZE": "0"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("pipeline.batch_size: must be between 1 and 10000, got 0"))

        result = try cli.run(["config", "--config", "missing.yaml"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("missing.yaml: cannot read the configuration file"))
    }

    @Test func backfillEmbedsEverythingAndARerunFindsNothingToDo() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        let seed = try cli.run(["seed", "--count", "300", "--out", "repos.json"])
        #expect(seed.status == 0)

        var result = try cli.run(["backfill", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        var report = try json(result.stdout)
        var summary = try #require(report["summary"] as? [String: Any])
        #expect(summary["embedded"] as? Int == 300)
        #expect(report["model"] as? String == "mock/mock-embed@16")

        result = try cli.run(["status", "--json"])
        #expect(result.status == 0)
        let stats = try json(result.stdout)
        #expect(stats["embedded"] as? Int == 300)
        #expect(stats["pending"] as? Int == 0)

        result = try cli.run(["backfill", "--json", "--batch-size", "7"])
        report = try json(result.stdout)
        summary = try #require(report["summary"] as? [String: Any])
        #expect(summary["embedded"] as? Int == 0)
        #expect(summary["providerCalls"] as? Int == 0)

        // Another dimension is another model: everything is pending again.
        result = try cli.run(["backfill", "--json", "--set", "providers.mock.dimensions=8"])
        summary = try #require(try json(result.stdout)["summary"] as? [String: Any])
        #expect(summary["embedded"] as? Int == 300)

        result = try cli.run(["backfill"])
        #expect(result.stdout.contains("0 embedded"))
        #expect(result.stdout.contains("Now: 300 repos, 300 embedded, 0 pending, 0 failed."))
    }

    @Test func runModeEmbedsAndStopsCleanlyOnSIGTERM() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try cli.run(["seed", "--count", "50", "--out", "repos.json"])
        let (process, _, err) = try cli.start(["run"])
        // Wait for the first batch log line, then ask it to stop.
        var log = Data()
        let deadline = ContinuousClock.now + .seconds(20)
        while !String(decoding: log, as: UTF8.self).contains("batch"), ContinuousClock.now < deadline {
            log.append(err.fileHandleForReading.availableData)
        }
        kill(process.processIdentifier, SIGTERM)
        log.append(err.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        let text = String(decoding: log, as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("embed-star stopped"))
        let status = try cli.run(["status", "--json"])
        #expect(try json(status.stdout)["embedded"] as? Int == 50)
    }

    /// A slow provider, so a signal lands while batches are in flight; SQLite, so what the
    /// process left behind can be read after it is gone.
    static let slowSQLiteConfig = """
        provider: mock
        store: sqlite
        monitoring:
          port: 0
        pipeline:
          batch_size: 10
          parallel_workers: 2
          poll_interval_ms: 50
        providers:
          mock:
            dimensions: 16
            latency_ms: 3000
        stores:
          sqlite:
            path: stars.sqlite
        """

    /// Starts `embed-star run` on 100 repos and returns once two batches are in flight.
    func startSlowRun(_ cli: CLI) throws -> (Process, Pipe) {
        try cli.write("plugins.yaml", Self.slowSQLiteConfig)
        _ = try cli.run(["seed", "--count", "100", "--format", "github", "--out", "stars.json"])
        #expect(try cli.run(["import", "stars.json"]).status == 0)
        let (process, _, err) = try cli.start(["run"], environment: ["LOG_LEVEL": "debug"])
        var log = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while !log.contains("embed-star running"), ContinuousClock.now < deadline {
            log += String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
        }
        Thread.sleep(forTimeInterval: 1)  // both workers have claimed and are waiting on the provider
        return (process, err)
    }

    @Test func sigtermMidBatchFinishesTheBatchesInFlightAndLeavesTheRestPending() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let (process, err) = try startSlowRun(cli)
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(ContinuousClock.now - signalled < .seconds(10), "the shutdown deadline is 30 s, the batches need 2 more")
        let stats = try json(try cli.run(["status", "--json"]).stdout)
        #expect(stats["embedded"] as? Int == 20, "the two batches in flight finish: \(stats)")
        #expect(stats["pending"] as? Int == 80)
        #expect(stats["leased"] as? Int == 0, "nothing stays claimed")
    }

    @Test func aSecondSignalExitsAtOnceWithoutCorruptingAnything() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let (process, err) = try startSlowRun(cli)
        kill(process.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(ContinuousClock.now - signalled < .seconds(1.5), "the batches in flight still needed about 1.7 s")
        #expect(process.terminationStatus == 128 + SIGTERM, "\(log)")
        #expect(log.contains("second signal"))
        let stats = try json(try cli.run(["status", "--json"]).stdout)
        #expect(stats["embedded"] as? Int == 0)
        #expect(stats["pending"] as? Int == 100, "every repo is still there and pending: \(stats)")
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        check.arguments = [cli.folder.appendingPathComponent("stars.sqlite").path, "PRAGMA integrity_check; SELECT count(*) FROM repo_vector;"]
        let out = Pipe()
        check.standardOutput = out
        try check.run()
        check.waitUntilExit()
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "ok\n0\n")
    }

    @Test func statusShowsCoveragePerModelDuringAModelChange() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try cli.run(["seed", "--count", "30", "--out", "repos.json"])
        #expect(try cli.run(["backfill"]).status == 0)
        let other = ["--set", "providers.mock.model=next-model"]
        let before = try cli.run(["status"] + other)
        #expect(before.stdout.contains("pending:  30"))
        #expect(before.stdout.contains("vectors by model:\n  mock/mock-embed@16: 30 (100.0%)"), "\(before.stdout)")
        let report = try json(try cli.run(["status", "--json"] + other).stdout)
        #expect(report["coverage"] as? [String: Int] == ["mock/mock-embed@16": 30])
        #expect(report["model"] as? String == "mock/next-model@16")
    }

    @Test func runFatalProviderErrorExitsOneAndLosesNothing() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try cli.run(["seed", "--count", "40", "--out", "repos.json"])
        let result = try cli.run(["backfill", "--set", "providers.mock.fail_all=true"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("fatal: mock provider configured with fail_all"))
        let stats = try json(try cli.run(["status", "--json"]).stdout)
        #expect(stats["pending"] as? Int == 40)
        #expect(stats["failed"] as? Int == 0)
    }

    @Test func jsonLogsCarryBatchAndInstanceOnEveryBatchLine() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try cli.run(["seed", "--count", "60", "--out", "repos.json"])
        let result = try cli.run(["backfill", "--set", "pipeline.instance_id=inst-7"], environment: ["LOG_FORMAT": "json", "LOG_LEVEL": "debug"])
        #expect(result.status == 0)
        let lines = result.stderr.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(!lines.isEmpty)
        let batchLines = lines.filter { $0["msg"] == "batch done" || $0["msg"] == "repo written" }
        #expect(batchLines.count == 3 + 60)  // batch_size 20: three summaries, one debug line per repo
        #expect(batchLines.allSatisfy { $0["instance"] == "inst-7" && ($0["batch"]?.isEmpty == false) })
        #expect(Set(batchLines.compactMap { $0["batch"] }).count == 3)
    }

    @Test func searchFindsTheRepoWhoseTextIsQueried() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try cli.run(["seed", "--count", "200", "--out", "repos.json"])
        var result = try cli.run(["search", "anything"])
        #expect(result.stdout.contains("No embedded repos"))
        _ = try cli.run(["backfill"])
        let records = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cli.folder.appendingPathComponent("repos.json"))) as? [[String: Any]])
        let target = records[42]
        let fullName = try #require(target["full_name"] as? String)
        let description = target["description"] as? String ?? ""
        let language = target["language"] as? String
        let topics = (target["topics"] as? [String]) ?? []
        let owner = (target["owner"] as? [String: Any])?["login"] as? String ?? ""
        var lines = [fullName, description]
        if let language { lines.append("Language: \(language)") }
        if !topics.isEmpty { lines.append("Topics: \(topics.joined(separator: ", "))") }
        lines.append("Owner: \(owner)")
        let text = lines.filter { !$0.isEmpty }.joined(separator: "\n")
        result = try cli.run(["search", text, "--limit", "3", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let hits = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(hits.count == 3)
        #expect(hits.first?["full_name"] as? String == fullName)
        #expect((hits.first?["score"] as? Double ?? 0) > 0.999)
        if let language {
            let filtered = try cli.run(["search", "library", "--language", language.lowercased(), "--json"])
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(filtered.stdout.utf8)) as? [[String: Any]])
            #expect(!rows.isEmpty && rows.allSatisfy { $0["language"] as? String == language })
        }
        let table = try cli.run(["search", text, "--limit", "1"])
        #expect(table.stdout.hasPrefix("score  repo"))
        #expect(table.stdout.contains(fullName))
        #expect(try cli.run(["search", "  "]).status != 0)
    }

    @Test func importLoadsGitHubStarsUpsertingByIdAndReportsBadEntries() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig.replacingOccurrences(of: "seed_file: repos.json\n", with: ""))
        func star(_ id: Int, _ name: String, _ description: String) -> String {
            #"{"id": \#(id), "full_name": "\#(name)", "name": "x", "description": "\#(description)", "html_url": "https://github.com/\#(name)", "#
                + #""stargazers_count": 12, "language": "Rust", "owner": {"login": "o", "avatar_url": "https://a"}, "private": false, "#
                + #""topics": ["toml"], "created_at": "2020-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "extra": {"ignored": true}}"#
        }
        // Two pages back to back, as `gh api --paginate` prints them, with two bad entries.
        try cli.write("stars.json", "[\(star(1, "o/a", "first")), \(star(2, "o/b", "second"))]\n[\(star(3, "o/c", "third")), {\"full_name\": \"no/id\"}, 42]")
        var result = try cli.run(["import", "stars.json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Imported 3 repos into mock; skipped 2 bad entries."))
        #expect(result.stderr.contains("field 'id': missing or not a number"))
        result = try cli.run(["backfill", "--json"])
        #expect((try json(result.stdout)["summary"] as? [String: Any])?["embedded"] as? Int == 3)
        // The same stars again: nothing pending. One changed description: one pending.
        try cli.write("stars2.json", "[{\"starred_at\": \"2024-05-01T00:00:00Z\", \"repo\": \(star(1, "o/a", "first, rewritten"))}, \(star(2, "o/b", "second"))]")
        _ = try cli.run(["import", "stars2.json"])
        let stats = try json(try cli.run(["status", "--json"]).stdout)
        #expect(stats["total"] as? Int == 3)
        #expect(stats["pending"] as? Int == 1)
        result = try cli.run(["import", "missing.json"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot read missing.json"))
    }

    @Test func seedWritesDeterministicRecords() throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let first = try cli.run(["seed", "--count", "5"])
        let second = try cli.run(["seed", "--count", "5"])
        #expect(first.status == 0)
        #expect(first.stdout == second.stdout)
        let records = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [[String: Any]])
        #expect(records.count == 5)
        #expect(records.allSatisfy { $0["full_name"] is String && $0["id"] is String })
    }
}
