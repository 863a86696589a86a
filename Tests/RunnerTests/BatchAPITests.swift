import AsyncHTTPClient
import EmbedStarApp
import EmbedStarCore
import EmbedStarTesting
import Foundation
import NIOCore
import Testing

/// `backfill --batch-api` end to end: the OpenAI provider against the test proxy's Batch API
/// (files, batches, a completion delay, a line that fails) with the real model behind it, on
/// the SurrealDB dev server, killed with `kill -9` half-way and started again.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] != nil
                && ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] != nil, "needs the dev server and the model (scripts/test)"))
struct BatchAPITests {
    let surreal = ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] ?? ""
    let front = ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] ?? ""

    @Test func aBatchBackfillKilledHalfWayResumesAndEmbedsEveryRepoOnce() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let token = "batch-\(UUID().uuidString.lowercased().prefix(8))"
        let count = 3_000
        _ = try await cli.run(["seed", "--count", "\(count)", "--seed", "34", "--format", "github", "--out", "stars.json"])
        // One repo's text the provider refuses (the proxy fails a line holding the marker).
        let file = cli.folder.appendingPathComponent("stars.json")
        var starred = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [[String: Any]]
        starred[1_234]["description"] = "zz-refuse-me-zz"
        let refusedName = starred[1_234]["full_name"] as! String
        try JSONSerialization.data(withJSONObject: starred).write(to: file)
        _ = try await fetchBytes("\(front)/__mode/\(token)", body: Data(#"{"batch_delay": 2, "batch_fail_marker": "zz-refuse-me-zz"}"#.utf8))
        try cli.write("plugins.yaml", """
            provider: openai
            store: surreal
            monitoring:
              enabled: false
            providers:
              openai:
                base_url: \(front)/f/\(token)/v1
                api_key: test-key
                model: multilingual-e5-small-q4
            stores:
              surreal:
                url: ws://\(surreal)
                namespace: test
                database: b\(token.suffix(8))
                pool_size: 2
            """)
        #expect(try await cli.run(["import", "stars.json"]).status == 0)
        let arguments = ["backfill", "--batch-api", "--batch-lines", "500", "--batch-jobs", "2", "--batch-poll-seconds", "2"]

        // First run: killed once a batch is written and the next is submitted (two in flight).
        let first = try cli.start(arguments, environment: ["LOG_LEVEL": "info"])
        defer { if first.isRunning { first.signal(SIGKILL) } }
        let halfWay = try await first.waitForStderr(timeout: .seconds(600)) { log in
            guard let written = log.range(of: "batch written") else { return false }
            return log[written.upperBound...].contains("batch submitted")
        }
        #expect(halfWay, "\(first.stderr.suffix(3000))")
        first.signal(SIGKILL)
        _ = await first.exit()
        let between = try await cli.status()
        #expect((between["embedded"] as? Int ?? 0) < count - 1, "killed before the end: \(between)")
        #expect((between["leased"] as? Int ?? 0) > 0, "the jobs in flight keep their repos leased: \(between)")

        // Second run: resumes the jobs the first left and embeds the rest.
        let second = try await cli.run(arguments, environment: ["LOG_LEVEL": "info"])
        #expect(second.status == 0, "\(second.stderr.suffix(3000))")
        #expect(second.stderr.contains("resuming a batch job"), "\(second.stderr.suffix(3000))")
        let status = try await cli.status()
        let events = { (log: String) in log.split(separator: "\n").filter { !$0.contains("in progress") }.joined(separator: "\n") }
        #expect(status["embedded"] as? Int == count - 1 && status["leased"] as? Int == 0,
                "\(status)\nfirst run:\n\(events(first.stderr).suffix(4000))\nsecond run:\n\(events(second.stderr).suffix(4000))")
        // Every text went to the provider once (a text whose batch was killed before its id
        // was kept would go twice: no such kill here), none through the one-by-one endpoint.
        let stats = try JSONSerialization.jsonObject(with: try await fetchBytes("\(front)/__stats/\(token)")) as! [String: Any]
        #expect(stats["batch_texts"] as? Int == count - 1, "every text embedded once by the batches: \(stats["batch_texts"] ?? "none")")
        #expect(stats["embed_calls"] as? Int == 0, "no call to /embeddings: \(stats["embed_calls"] ?? "none")")
        // The refused line counted an attempt with the provider's reason (two when the second
        // run lasted past its retry delay: it is claimed and refused again).
        let inspected = try await cli.run(["inspect", refusedName, "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8))
        let repo = (parsed as? [[String: Any]])?.first ?? parsed as? [String: Any] ?? [:]
        #expect((repo["attempts"] as? Int ?? 0) >= 1 && (repo["last_error"] as? String ?? "").contains("Invalid input")
                && repo["state"] as? String != "embedded", "\(inspected.stdout)")
    }
}
