import EmbedStarApp
import AsyncHTTPClient
import EmbedStarCore
import Foundation
import NIOCore
import SurrealClient
import EmbedStarTesting
import Testing

/// Several instances on one SurrealDB database with the real model, one of them killed with
/// `kill -9` while it holds leases: nothing is lost, nothing is embedded twice beyond what the
/// killed instance had in flight.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] != nil
                && ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] != nil, "needs the dev server and the model (scripts/test)"))
struct InstancesTests {
    let surreal = ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] ?? ""
    let front = ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] ?? ""

    /// SIGTERM while batches are in flight on SurrealDB: the connections stay open until the
    /// batches are written and the store is shut down. (The WebSocket handler closes a
    /// connection on the graceful shutdown of the task that opened it; the pipeline opened them
    /// inside the service group, so the signal closed them under the batches: the workers
    /// reconnected, and on 2.3.10 waited 20 s for it.)
    @Test func sigtermMidBatchKeepsTheConnectionsUntilTheBatchesAreWritten() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", """
            provider: mock
            store: surreal
            monitoring:
              enabled: false
            pipeline:
              batch_size: 10
              parallel_workers: 2
            providers:
              mock:
                dimensions: 8
                latency_ms: 15000
            stores:
              surreal:
                url: ws://\(surreal)
                namespace: test
                database: t\(UUID().uuidString.lowercased().prefix(8))
                pool_size: 2
            """)
        // Batches of 15 s: long enough that the claims are seen (by `status`, a process of its
        // own, slow beside the other tests) and the signal sent while both are in flight.
        _ = try await cli.run(["seed", "--count", "100", "--format", "github", "--out", "stars.json"])
        let imported = try await cli.run(["import", "stars.json"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let process = try cli.start(["run"], environment: ["LOG_LEVEL": "debug"])
        defer { if process.isRunning { process.signal(SIGKILL) } }
        let claimed = try await waitUntil(timeout: .seconds(60), every: .milliseconds(100)) {
            try await cli.status()["leased"] as? Int == 20 || !process.isRunning
        }
        let seen = ContinuousClock.now
        #expect(claimed && process.isRunning, "both workers claim a batch of 10: \(process.stderr.suffix(2000))")
        process.signal(SIGTERM)
        #expect(await process.exit() == 0, "\(process.stderr.suffix(2000))")
        let stopping = ContinuousClock.now - seen
        #expect(stopping < .seconds(21), "the two batches of 15 s are written and the process ends (a reconnect waited 20 s more): \(stopping)")
        // What happened before the pipeline stopped (the store closes its connections after).
        let beforeStop = process.stderr.components(separatedBy: "embed-star stopped").first ?? ""
        #expect(!beforeStop.contains("store unavailable"), "\(beforeStop.suffix(3000))")
        #expect(!beforeStop.contains("connection ended"), "no connection closes before the pipeline stops: \(beforeStop.suffix(3000))")
        let status = try await cli.status()
        #expect(status["embedded"] as? Int == 20 && status["leased"] as? Int == 0, "\(status)")
    }

    @Test func threeInstancesOneKilledEveryRepoGetsItsOwnVectorOnce() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let token = UUID().uuidString.lowercased()
        let database = "i\(token.prefix(8))"
        let count = 1_000
        _ = try await cli.run(["seed", "--count", "\(count)", "--seed", "31", "--format", "github", "--out", "stars.json"])
        let repos = try GitHubStarred.parse(Data(contentsOf: cli.folder.appendingPathComponent("stars.json")), source: "stars.json").repos
        let builder = try TextBuilder()

        // Time limits come from the model's pace on this machine now, measured on 40 of these
        // texts through the same server. A lease outlasts, five times over, a batch of 10 with
        // all six workers' batches queued at the model before it; the whole run gets four times
        // what the model needs for every text, plus a lease, plus a minute.
        let probe = Array(repos.prefix(40)).map { builder.text(for: $0) }
        let started = ContinuousClock.now
        _ = try await fetchBytes("\(front)/f/probe-\(token)/v1/embeddings",
                          body: try JSONSerialization.data(withJSONObject: ["model": "multilingual-e5-small-q4", "input": probe]))
        let perText = (ContinuousClock.now - started) / probe.count
        let lease = max(15, Int((perText * 10 * 6 * 5).components.seconds) + 1)
        let budget = perText * count * 4 + .seconds(lease + 60)
        print("three instances: the model takes \(perText) a text; lease \(lease) s, budget \(budget)")

        try cli.write("plugins.yaml", """
            provider: openai
            store: surreal
            monitoring:
              enabled: false
            pipeline:
              batch_size: 10
              parallel_workers: 2
              lease_seconds: \(lease)
              poll_interval_ms: 200
            providers:
              openai:
                base_url: \(front)/f/\(token)/v1
                api_key: test-key
                model: multilingual-e5-small-q4
                timeout_seconds: 300
            stores:
              surreal:
                url: ws://\(surreal)
                namespace: test
                database: \(database)
                pool_size: 2
            """)
        let imported = try await cli.run(["import", "stars.json"])
        #expect(imported.status == 0, "\(imported.stderr)")

        var instances: [Subprocess] = []
        for number in 1...3 {
            instances.append(try cli.start(["run", "--set", "pipeline.instance_id=instance-\(number)"], environment: ["LOG_LEVEL": "info"]))
        }
        // Kill the second one while it holds leases: after its second batch, mid-third.
        let victim = instances[1]
        let twoBatches = try await victim.waitForStderr(timeout: budget) { $0.components(separatedBy: "batch done").count >= 3 }
        #expect(twoBatches, "the second instance never finished two batches: \(victim.stderr.suffix(2000))")
        victim.signal(SIGKILL)
        _ = await victim.exit()
        let killed = ContinuousClock.now

        // The others finish the work, including the killed one's repos once its leases expire.
        var status: [String: Any] = [:]
        try await waitUntil(timeout: budget, every: .seconds(1)) {
            status = try await cli.status()
            return status["pending"] as? Int == 0
        }
        print("three instances: every repo embedded \(ContinuousClock.now - killed) after the kill, \(ContinuousClock.now - started) after the probe")
        for process in instances { process.signal(SIGTERM) }
        for (number, process) in instances.enumerated() where number != 1 {
            let exit = await process.exit()
            #expect(exit == 0, "instance \(number + 1): \(process.stderr.suffix(2000))")
        }
        #expect(status["embedded"] as? Int == count && status["failed"] as? Int == 0 && status["leased"] as? Int == 0, "\(status)")

        // Provider-side count: every text the model embedded, from all three instances.
        let stats = try #require(try JSONSerialization.jsonObject(with: try await fetchBytes("\(front)/__stats/\(token)")) as? [String: Any])
        let sent = try #require(stats["texts"] as? Int)
        let duplicates = sent - count
        print("three instances, one killed: \(count) repos, \(sent) texts embedded by the model (\(duplicates) twice), \(stats["embed_calls"] ?? 0) calls")
        // A lease far longer than a batch takes: only the killed instance's leased batches
        // (2 workers x 10) may be embedded twice.
        #expect(duplicates >= 0 && duplicates <= 2 * 10, "only the killed instance's leased batches may be embedded twice")

        // Each repo carries the vector of its own text: every one has a vector of the model's
        // dimension, and a sample matches the model's own answer for its text.
        let client = SurrealClient(configuration: try SurrealConfiguration(url: "http://\(surreal)", namespace: "test", database: database,
                                                                          credentials: .init(user: "root", password: "root")))
        defer { Task { await client.close() } }
        let rows = try await client.query("SELECT id, embedding FROM repo").first?.array ?? []
        #expect(rows.count == count)
        var vectors: [String: [Float]] = [:]
        for row in rows {
            guard let id = row["id"]?.recordID?.plainDescription else { continue }
            vectors[id] = row["embedding"]?.floatArray
        }
        #expect(vectors.values.allSatisfy { $0.count == 384 })
        let sample = stride(from: 0, to: repos.count, by: 20).map { repos[$0] }
        let texts = sample.map { builder.text(for: $0) }
        let answer = try #require(try JSONSerialization.jsonObject(with: try await fetchBytes("\(front)/__direct", body: try JSONSerialization.data(withJSONObject: ["texts": texts]))) as? [String: Any])
        let own = try #require(answer["vectors"] as? [[Double]])
        for (repo, expected) in zip(sample, own) {
            let stored = try #require(vectors[repo.id.rawValue], "no vector on \(repo.id)")
            var dot = 0.0, a = 0.0, b = 0.0
            for i in stored.indices {
                dot += Double(stored[i]) * expected[i]
                a += Double(stored[i]) * Double(stored[i])
                b += expected[i] * expected[i]
            }
            #expect(dot / (a.squareRoot() * b.squareRoot()) > 0.99, "\(repo.id) does not carry the vector of its own text")
        }
    }
}
