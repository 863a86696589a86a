import Foundation
import EmbedStarTesting
import Testing

/// `embed-star report` as a user runs it: against a store another process is filling, reading
/// that instance's /metrics.
struct ReportCLITests {
    struct CLIFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test func reportReadsTheStoreAndARunningInstancesMetrics() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let port = try LocalPort.free()
        try cli.write("plugins.yaml", """
            provider: mock
            store: sqlite
            monitoring:
              port: \(port)
            pipeline:
              batch_size: 10
              parallel_workers: 2
              poll_interval_ms: 50
            providers:
              mock:
                dimensions: 16
                latency_ms: 500
            stores:
              sqlite:
                path: stars.sqlite
            """)
        _ = try await cli.run(["seed", "--count", "400", "--format", "github", "--out", "stars.json"])
        #expect(try await cli.run(["import", "stars.json"]).status == 0)

        // Without a running instance the page says what it could not see.
        var result = try await cli.run(["report", "--json", "--sample", "50", "--out", "pages/first.html"])
        #expect(result.status == 0, "\(result.stderr)")
        var report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        var backlog = try #require(report["backlog"] as? [String: Any])
        #expect(backlog["total"] as? Int == 400 && backlog["pending"] as? Int == 400)
        #expect((report["service"] as? [String: Any])?["available"] as? Bool == false)
        #expect(FileManager.default.fileExists(atPath: cli.folder.appendingPathComponent("pages/first.html").path))

        // With one: rates from two scrapes while it embeds (about 10 s of batches of 500 ms, so
        // the report's window falls inside them however slowly its process starts); the password
        // in the address is never shown.
        let process = try cli.start(["run"])
        defer { if process.isRunning { process.signal(SIGKILL) } }
        #expect(try await process.waitForStderr(timeout: .seconds(60)) { $0.contains("batch done") }, "\(process.stderr)")
        result = try await cli.run(["report", "--json", "--sample", "50", "--metrics-url", "http://operator:s3cret-pw@127.0.0.1:\(port)/metrics",
                                    "--metrics-window", "2", "--out", "report.html"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!(result.stdout + result.stderr).contains("s3cret-pw"))
        report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let service = try #require(report["service"] as? [String: Any])
        #expect(service["available"] as? Bool == true, "\(service)")
        #expect(service["source"] as? String == "http://127.0.0.1:\(port)/metrics")
        #expect(service["window_seconds"] as? Double ?? 0 >= 2)
        #expect(service["embeddings_per_second"] as? Double ?? 0 > 0, "the instance embeds during the window: \(service)")
        #expect(service["provider_latency_p50_ms"] as? Double ?? 0 >= 400, "the mock answers in 500 ms: \(service)")
        #expect(service["circuit"] as? String == "closed")
        let page = try String(contentsOf: cli.folder.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(page.contains("embeddings / s") && !page.contains("s3cret-pw"))

        process.signal(SIGTERM)
        #expect(await process.exit() == 0, "\(process.stderr)")
        result = try await cli.run(["report", "--json", "--sample", "50", "--metrics-url", "http://operator:s3cret-pw@127.0.0.1:\(port)/metrics",
                                    "--out", "report.html"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!(result.stdout + result.stderr).contains("s3cret-pw"), "an address that does not answer is shown without its password")
        report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        backlog = try #require(report["backlog"] as? [String: Any])
        let status = try await cli.status()
        #expect(backlog["embedded"] as? Int == status["embedded"] as? Int && backlog["pending"] as? Int == status["pending"] as? Int,
                "the report's counts are status's")
        let unseen = try #require(report["service"] as? [String: Any])
        #expect(unseen["available"] as? Bool == false && (unseen["note"] as? String)?.contains("did not answer") == true, "\(unseen)")

        result = try await cli.run(["report", "--metrics-url", "ftp://x", "--out", "r.html"])
        #expect(result.status == 64 && result.stderr.contains("--metrics-url must be an http(s) address"), "a usage error: \(result.status) \(result.stderr)")
    }
}
