import AsyncHTTPClient
import Foundation
import EmbedStarTesting
import Testing

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
    /// `--version` says which build this is: built from this clone, it names HEAD's commit
    /// (or its tag).
    @Test func versionNamesTheCommitItWasBuiltFrom() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let version = try await cli.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let git = try Subprocess(URL(fileURLWithPath: "/usr/bin/git"), ["-C", CLI.packageRoot.path, "describe", "--tags", "--always", "--abbrev=7"])
        _ = await git.exit()
        let described = git.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!described.isEmpty, "not a git clone: \(git.stderr)")
        #expect(version.contains(described), "--version says \(version), git describe \(described)")
    }

    /// A relative `tls_ca_file` is read from the configuration file's folder, as every path in
    /// the configuration is, not from the working directory (the store's and a provider's).
    @Test func aRelativeCAFileIsReadFromTheConfigurationsFolder() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let certs = cli.folder.appendingPathComponent("deploy/certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: certificates.ca, toPath: certs.appendingPathComponent("ca.pem").path)
        try cli.write("deploy/plugins.yaml", """
            provider: ollama
            store: surreal
            providers:
              ollama:
                url: https://localhost:11434
                tls_ca_file: certs/ca.pem
            stores:
              surreal:
                url: wss://localhost:8000
                tls_ca_file: certs/ca.pem
            """)
        let result = try await cli.run(["config", "--config", "deploy/plugins.yaml"])  // from the folder above
        #expect(result.status == 0, "the CA file beside the configuration is found: \(result.stderr)")
    }

    @Test func pluginsListsTheBuiltInPlugins() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["plugins"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let providers = lines.drop { $0 != "providers:" }.dropFirst().prefix { $0.hasPrefix("  ") }.map { $0.split(separator: " ")[0] }
        let stores = lines.drop { $0 != "stores:" }.dropFirst().prefix { $0.hasPrefix("  ") }.map { $0.split(separator: " ")[0] }
        #expect(providers == ["local", "mock", "ollama", "openai", "together"], "the example plugin is not in the binary")
        #expect(stores == ["mock", "sqlite", "surreal"])
    }

    /// `plugins --verbose` reads the keys off each plugin's configuration type; docs/configuration.md's
    /// configuration reference must name every one of them under the plugin's heading.
    @Test func readmeDocumentsEveryKeyOfEveryPlugin() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["plugins", "--verbose"])
        #expect(result.status == 0)
        let readme = try String(contentsOf: CLI.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
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

    @Test func shippedConfigurationIsValidInTheDevEnvironmentAndHidesSecrets() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["config", "--env", "dev"], environment: ["DB_PASS": "hunter2-secret", "OPENAI_API_KEY": "sk-live-123"], in: CLI.packageRoot)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("provider: mock"))
        #expect(result.stdout.contains("seed_file: examples/sample-repos.json"))
        #expect(!result.stdout.contains("hunter2-secret") && !result.stderr.contains("hunter2-secret"))
        #expect(!result.stdout.contains("sk-live-123") && !result.stderr.contains("sk-live-123"))
    }

    @Test func storeFlagsSetTheKeysTheSelectedStoreDeclares() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", "provider: mock\nstore: sqlite\nproviders:\n  mock: {dimensions: 16}\nstores:\n  sqlite: {path: a.sqlite}\n")
        var result = try await cli.run(["config", "--db-url", "/data/stars.sqlite"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("path: /data/stars.sqlite"))
        #expect(!result.stdout.contains("url:"))
        result = try await cli.run(["config", "--pool-size", "4"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("command line --pool-size: the sqlite store has no setting --pool-size sets"))
        result = try await cli.run(["config", "--embedding-provider", "local", "--embedding-model", "models/e5.bin"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("model_path: models/e5.bin"))
    }

    @Test func invalidConfigurationExitsTwoWithFileLineAndKey() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig.replacingOccurrences(of: "    dimensions: 16", with: "    dimensons: 16"))
        var result = try await cli.run(["config"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("plugins.yaml:11:5: providers.mock: unknown key 'dimensons'; did you mean 'dimensions'?"))

        try cli.write("plugins.yaml", "provider: mock\nstore: [unclosed\n")
        result = try await cli.run(["config"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("plugins.yaml:"))
        #expect(result.stderr.contains("invalid YAML"))

        try cli.write("plugins.yaml", mockConfig)
        result = try await cli.run(["status", "--embedding-provider", "olama"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("unknown provider 'olama'"))
        #expect(result.stderr.contains("did you mean 'ollama'?"))
        #expect(result.stderr.contains("registered providers: local, mock, ollama, openai, together"))

        result = try await cli.run(["backfill"], environment: ["BATCH_SIZE": "0"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("pipeline.batch_size: must be between 1 and 10000, got 0"))

        result = try await cli.run(["config", "--config", "missing.yaml"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("missing.yaml: cannot read the configuration file"))
    }

    @Test func backfillEmbedsEverythingAndARerunFindsNothingToDo() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        let seed = try await cli.run(["seed", "--count", "300", "--out", "repos.json"])
        #expect(seed.status == 0)

        var result = try await cli.run(["backfill", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        var report = try json(result.stdout)
        var summary = try #require(report["summary"] as? [String: Any])
        #expect(summary["embedded"] as? Int == 300)
        #expect(report["model"] as? String == "mock/mock-embed@16")

        result = try await cli.run(["status", "--json"])
        #expect(result.status == 0)
        let stats = try json(result.stdout)
        #expect(stats["embedded"] as? Int == 300)
        #expect(stats["pending"] as? Int == 0)
        let lexical = stats["lexical"] as? [String: Any]
        #expect(lexical?["state"] as? String == "ready" && lexical?["indexed"] as? Int == 300 && lexical?["waiting"] as? Int == 0, "\(String(describing: lexical))")
        #expect(try await cli.run(["status"]).stdout.contains("lexical:  ready (300 repos' words, 0 changes waiting)"))

        result = try await cli.run(["backfill", "--json", "--batch-size", "7"])
        report = try json(result.stdout)
        summary = try #require(report["summary"] as? [String: Any])
        #expect(summary["embedded"] as? Int == 0)
        #expect(summary["providerCalls"] as? Int == 0)

        // Another dimension is another model: everything is pending again.
        result = try await cli.run(["backfill", "--json", "--set", "providers.mock.dimensions=8"])
        summary = try #require(try json(result.stdout)["summary"] as? [String: Any])
        #expect(summary["embedded"] as? Int == 300)

        result = try await cli.run(["backfill"])
        #expect(result.stdout.contains("0 embedded"))
        #expect(result.stdout.contains("Now: 300 repos, 300 embedded, 0 pending, 0 failed."))
    }

    @Test func runModeEmbedsAndStopsCleanlyOnSIGTERM() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try await cli.run(["seed", "--count", "50", "--out", "repos.json"])
        let process = try cli.start(["run"])
        // Wait for the first batch log line, then ask it to stop.
        #expect(try await process.waitForStderr(timeout: .seconds(60)) { $0.contains("batch") }, "\(process.stderr)")
        process.signal(SIGTERM)
        let status = await process.exit()
        #expect(status == 0, "\(process.stderr)")
        #expect(process.stderr.contains("embed-star stopped"))
        #expect(try await cli.status()["embedded"] as? Int == 50)
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
            latency_ms: ${LATENCY_MS}
        stores:
          sqlite:
            path: stars.sqlite
        """

    /// Starts `embed-star run` on 100 repos and returns once both workers hold a claimed batch
    /// (read from the database, which the process shares with `status`).
    func startSlowRun(_ cli: CLI, latencyMs: Int, monitoringPort: Int = 0) async throws -> Subprocess {
        try cli.write("plugins.yaml", Self.slowSQLiteConfig.replacingOccurrences(of: "${LATENCY_MS}", with: "\(latencyMs)")
            .replacingOccurrences(of: "port: 0", with: "port: \(monitoringPort)"))
        _ = try await cli.run(["seed", "--count", "100", "--format", "github", "--out", "stars.json"])
        #expect(try await cli.run(["import", "stars.json"]).status == 0)
        let process = try cli.start(["run"], environment: ["LOG_LEVEL": "debug"])
        let claimed = try await waitUntil(timeout: .seconds(120), every: .milliseconds(200)) {
            try await cli.status()["leased"] as? Int == 20 || !process.isRunning
        }
        #expect(claimed && process.isRunning, "both workers claim a batch of 10: \(process.stderr)")
        return process
    }

    @Test func sigtermMidBatchFinishesTheBatchesInFlightAndLeavesTheRestPending() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let process = try await startSlowRun(cli, latencyMs: 20_000)  // far longer than noticing the claims takes, beside other tests
        process.signal(SIGTERM)
        let status = await process.exit()
        #expect(status == 0, "\(process.stderr)")
        let stats = try await cli.status()
        #expect(stats["embedded"] as? Int == 20, "the two batches in flight finish: \(stats)")
        #expect(stats["pending"] as? Int == 80)
        #expect(stats["leased"] as? Int == 0, "nothing stays claimed")
        #expect(process.stderr.contains("embed-star stopped"))
    }

    @Test func aSecondSignalExitsAtOnceWithoutCorruptingAnything() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        // Batches that take 30 s: if the second signal waited for them, they would be embedded.
        let process = try await startSlowRun(cli, latencyMs: 30_000)
        process.signal(SIGTERM)
        // The first signal is taken (the process says it is stopping) before the second is sent.
        #expect(try await process.waitForStderr(timeout: .seconds(60)) { $0.contains("signal received") }, "\(process.stderr)")
        process.signal(SIGTERM)
        let status = await process.exit()
        #expect(status == 128 + SIGTERM, "\(process.stderr)")
        #expect(process.stderr.contains("second signal"))
        let stats = try await cli.status()
        #expect(stats["embedded"] as? Int == 0, "the batches in flight (30 s each) were not waited for: \(stats)")
        #expect(stats["pending"] as? Int == 100, "every repo is still there and pending: \(stats)")
        let check = try Subprocess(URL(fileURLWithPath: "/usr/bin/sqlite3"),
                                   [cli.folder.appendingPathComponent("stars.sqlite").path, "PRAGMA integrity_check; SELECT count(*) FROM repo_vector;"])
        _ = await check.exit()
        #expect(check.stdout == "ok\n0\n")
    }

    @Test func statusShowsCoveragePerModelDuringAModelChange() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try await cli.run(["seed", "--count", "30", "--out", "repos.json"])
        #expect(try await cli.run(["backfill"]).status == 0)
        let other = ["--set", "providers.mock.model=next-model"]
        let before = try await cli.run(["status"] + other)
        #expect(before.stdout.contains("pending:  30"))
        #expect(before.stdout.contains("vectors by model:\n  mock/mock-embed@16: 30 (100.0%)"), "\(before.stdout)")
        let report = try json(try await cli.run(["status", "--json"] + other).stdout)
        #expect(report["coverage"] as? [String: Int] == ["mock/mock-embed@16": 30])
        #expect(report["model"] as? String == "mock/next-model@16")
    }

    @Test func runFatalProviderErrorExitsOneAndLosesNothing() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try await cli.run(["seed", "--count", "40", "--out", "repos.json"])
        let result = try await cli.run(["backfill", "--set", "providers.mock.fail_all=true"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("fatal: mock provider configured with fail_all"))
        let stats = try await cli.status()
        #expect(stats["pending"] as? Int == 40)
        #expect(stats["failed"] as? Int == 0)
    }

    @Test func jsonLogsCarryBatchAndInstanceOnEveryBatchLine() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try await cli.run(["seed", "--count", "60", "--out", "repos.json"])
        let result = try await cli.run(["backfill", "--set", "pipeline.instance_id=inst-7"], environment: ["LOG_FORMAT": "json", "LOG_LEVEL": "debug"])
        #expect(result.status == 0)
        let lines = result.stderr.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(!lines.isEmpty)
        let batchLines = lines.filter { $0["msg"] == "batch done" || $0["msg"] == "repo written" }
        #expect(batchLines.count == 3 + 60)  // batch_size 20: three summaries, one debug line per repo
        #expect(batchLines.allSatisfy { $0["instance"] == "inst-7" && ($0["batch"]?.isEmpty == false) })
        #expect(Set(batchLines.compactMap { $0["batch"] }).count == 3)
    }

    @Test func searchFindsTheRepoWhoseTextIsQueried() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", mockConfig)
        _ = try await cli.run(["seed", "--count", "200", "--out", "repos.json"])
        var result = try await cli.run(["search", "anything"])
        #expect(result.stdout.contains("No embedded repos"))
        _ = try await cli.run(["backfill"])
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
        result = try await cli.run(["search", text, "--limit", "3", "--json", "--mode", "vector"])
        #expect(result.status == 0, "\(result.stderr)")
        let hits = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(hits.count == 3)
        #expect(hits.first?["full_name"] as? String == fullName)
        #expect((hits.first?["score"] as? Double ?? 0) > 0.999)
        #expect(hits.first?["found_by"] as? [String] == ["vector"])
        // Hybrid (the default): the same repo first, found by both sides, with its cosine.
        result = try await cli.run(["search", text, "--limit", "3", "--json"])
        let fused = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(fused.first?["full_name"] as? String == fullName)
        #expect(fused.first?["found_by"] as? [String] == ["vector", "lexical"])
        #expect((fused.first?["vector_score"] as? Double ?? 0) > 0.999)
        // Lexical: by the name alone; the repo the query names first.
        let name = try #require(fullName.split(separator: "/").last.map(String.init))
        result = try await cli.run(["search", name, "--mode", "lexical", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let words = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(words.first?["full_name"] as? String == fullName)
        #expect(words.first?["found_by"] as? [String] == ["lexical"])
        // similar: the nearest to a named repo, itself left out.
        result = try await cli.run(["similar", fullName, "--limit", "3", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let similar = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(similar.count == 3 && !similar.contains { $0["full_name"] as? String == fullName })
        #expect(zip(similar, similar.dropFirst()).allSatisfy { ($0["score"] as? Double ?? 0) >= ($1["score"] as? Double ?? 0) })
        result = try await cli.run(["similar", "nobody/nothing"])
        #expect(result.status == 1 && result.stderr.contains("no repo nobody/nothing in the store"))
        if let language {
            let filtered = try await cli.run(["search", "library", "--language", language.lowercased(), "--json"])
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(filtered.stdout.utf8)) as? [[String: Any]])
            #expect(!rows.isEmpty && rows.allSatisfy { $0["language"] as? String == language })
        }
        var table = try await cli.run(["search", text, "--limit", "1"])
        #expect(table.stdout.hasPrefix("score  by    repo"))
        #expect(table.stdout.contains("v+w") && table.stdout.contains(fullName))
        table = try await cli.run(["search", text, "--limit", "1", "--mode", "vector"])
        #expect(table.stdout.hasPrefix("score  repo"))
        #expect(try await cli.run(["search", "  "]).status != 0)
    }

    @Test func importLoadsGitHubStarsUpsertingByIdAndReportsBadEntries() async throws {
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
        var result = try await cli.run(["import", "stars.json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Imported 3 repos into mock; skipped 2 bad entries."))
        #expect(result.stderr.contains("field 'id': missing or not a number"))
        result = try await cli.run(["backfill", "--json"])
        #expect((try json(result.stdout)["summary"] as? [String: Any])?["embedded"] as? Int == 3)
        // The same stars again: nothing pending. One changed description: one pending.
        try cli.write("stars2.json", "[{\"starred_at\": \"2024-05-01T00:00:00Z\", \"repo\": \(star(1, "o/a", "first, rewritten"))}, \(star(2, "o/b", "second"))]")
        _ = try await cli.run(["import", "stars2.json"])
        let stats = try await cli.status()
        #expect(stats["total"] as? Int == 3)
        #expect(stats["pending"] as? Int == 1)
        result = try await cli.run(["import", "missing.json"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot read missing.json"))
    }

    @Test func seedWritesDeterministicRecords() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let first = try await cli.run(["seed", "--count", "5"])
        let second = try await cli.run(["seed", "--count", "5"])
        #expect(first.status == 0)
        #expect(first.stdout == second.stdout)
        let records = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [[String: Any]])
        #expect(records.count == 5)
        #expect(records.allSatisfy { $0["full_name"] is String && $0["id"] is String })
    }

    /// Status and body of a GET, or nil when nothing answers.
    func fetch(_ url: String, timeout: Duration = .seconds(5)) async -> (status: UInt, body: String)? {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .init(timeout)),
              var buffer = try? await response.body.collect(upTo: 1 << 20) else { return nil }
        return (response.status.code, buffer.readString(length: buffer.readableBytes) ?? "")
    }

    /// The monitoring server is up while the pipeline starts (here: a provider that cannot be
    /// reached yet, so the start waits), says so on /readyz and /health, and a signal ends the
    /// wait at once.
    @Test func monitoringAnswersWhileThePipelineStarts() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let port = try LocalPort.free()
        let nothing = try LocalPort.free()  // nobody listens here
        try cli.write("plugins.yaml", """
            provider: ollama
            store: mock
            monitoring:
              port: \(port)
              stats_interval_seconds: 300
            pipeline:
              store_outage_seconds: 600
            providers:
              ollama:
                url: http://127.0.0.1:\(nothing)
                timeout_seconds: 1
            stores:
              mock:
                seed_file: repos.json
            """)
        _ = try await cli.run(["seed", "--count", "10", "--out", "repos.json"])
        let process = try cli.start(["run"])
        defer { if process.isRunning { process.signal(SIGKILL) } }
        let up = try await waitUntil(timeout: .seconds(60), every: .milliseconds(100)) {
            await fetch("http://127.0.0.1:\(port)/livez")?.status == 200 || !process.isRunning
        }
        #expect(up && process.isRunning, "\(process.stderr)")
        let ready = await fetch("http://127.0.0.1:\(port)/readyz")
        #expect(ready?.status == 503 && ready?.body == "starting\n", "\(String(describing: ready))")
        let health = try json(try #require(await fetch("http://127.0.0.1:\(port)/health", timeout: .seconds(30))).body)
        #expect(health["status"] as? String == "starting", "\(health)")
        #expect((health["provider"] as? [String: Any])?["status"] as? String == "down", "a provider check that hangs is cut short: \(health)")
        #expect(try await process.waitForStderr(timeout: .seconds(30)) { $0.contains("cannot describe its model yet") },
                "the start is waiting for the provider: \(process.stderr)")
        // The backlog gauges are published while the start waits (for the model the store last
        // served: none here, so all 10 are pending) within seconds (a second or two idle; the
        // check allows 10 s), not after the first refresh interval (300 s here): the backlog
        // alerts can fire.
        var metrics = ""
        let published = try await waitUntil(timeout: .seconds(10), every: .milliseconds(200)) {  // the refresh interval is 300 s here
            metrics = await fetch("http://127.0.0.1:\(port)/metrics")?.body ?? ""
            return metrics.contains("embed_star_repos_pending 10")
        }
        #expect(published, "\(metrics)")
        let age = metrics.split(separator: "\n").first { $0.hasPrefix("embed_star_oldest_pending_age_seconds ") }
        #expect(age.flatMap { Double($0.split(separator: " ")[1]) }.map { $0 >= 0 && $0 < 600 } == true, "\(String(describing: age))")
        let signalled = ContinuousClock.now
        process.signal(SIGTERM)
        #expect(await process.exit() == 0, "\(process.stderr)")
        #expect(ContinuousClock.now - signalled < .seconds(10), "the signal ends the wait for the provider")
    }

    /// After SIGTERM the pipeline stops first and the monitoring server last: /livez and
    /// /metrics still answer while the batches in flight are written.
    @Test func monitoringAnswersUntilTheLastBatchIsWritten() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let port = try LocalPort.free()
        let process = try await startSlowRun(cli, latencyMs: 20_000, monitoringPort: port)
        defer { if process.isRunning { process.signal(SIGKILL) } }
        process.signal(SIGTERM)
        #expect(try await process.waitForStderr(timeout: .seconds(30)) { $0.contains("signal received") }, "\(process.stderr)")
        let live = await fetch("http://127.0.0.1:\(port)/livez")
        let metrics = await fetch("http://127.0.0.1:\(port)/metrics")
        #expect(process.isRunning, "the batches (20 s each) are still in flight")
        #expect(live?.status == 200, "\(String(describing: live))")
        #expect(metrics?.body.contains("embed_star_") == true)
        #expect(await process.exit() == 0, "\(process.stderr)")
        #expect(try await cli.status()["embedded"] as? Int == 20, "the two batches in flight were written")
    }
}
