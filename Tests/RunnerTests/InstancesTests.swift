import AsyncHTTPClient
import EmbedStarCore
import Foundation
import NIOCore
import SurrealClient
import Testing

/// Several instances on one SurrealDB database with the real model, one of them killed with
/// `kill -9` while it holds leases: nothing is lost, nothing is embedded twice beyond what the
/// killed instance had in flight.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] != nil
                && ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] != nil, "needs the dev server and the model (scripts/test)"))
struct InstancesTests {
    let surreal = ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] ?? ""
    let front = ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] ?? ""

    func get(_ url: String, body: Data? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: url)
        if let body {
            request.method = .POST
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
        var buffer = try await response.body.collect(upTo: 64 << 20)
        return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    @Test func threeInstancesOneKilledEveryRepoGetsItsOwnVectorOnce() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let token = UUID().uuidString.lowercased()
        let database = "i\(token.prefix(8))"
        let count = 2_000
        try cli.write("plugins.yaml", """
            provider: openai
            store: surreal
            monitoring:
              enabled: false
            pipeline:
              batch_size: 10
              parallel_workers: 2
              lease_seconds: 60
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
        _ = try cli.run(["seed", "--count", "\(count)", "--seed", "31", "--format", "github", "--out", "stars.json"])
        let imported = try cli.run(["import", "stars.json"])
        #expect(imported.status == 0, "\(imported.stderr)")

        var instances: [(Process, Pipe)] = []
        for number in 1...3 {
            let (process, _, err) = try cli.start(["run", "--set", "pipeline.instance_id=instance-\(number)"], environment: ["LOG_LEVEL": "info"])
            instances.append((process, err))
        }
        // Kill the second one while it holds leases: after its second batch, mid-third.
        let victim = instances[1]
        var log = ""
        let deadline = ContinuousClock.now + .seconds(120)
        while log.components(separatedBy: "batch done").count < 3, ContinuousClock.now < deadline {
            log += String(decoding: victim.1.fileHandleForReading.availableData, as: UTF8.self)
        }
        kill(victim.0.processIdentifier, SIGKILL)
        victim.0.waitUntilExit()

        // The others finish the work, including the killed one's repos once its leases expire.
        var status: [String: Any] = [:]
        let finish = ContinuousClock.now + .seconds(400)
        repeat {
            try await Task.sleep(for: .seconds(1))
            status = try #require(try JSONSerialization.jsonObject(with: Data(try cli.run(["status", "--json"]).stdout.utf8)) as? [String: Any])
        } while (status["pending"] as? Int ?? 1) > 0 && ContinuousClock.now < finish
        for (process, _) in instances where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        for (number, (process, err)) in instances.enumerated() where number != 1 {
            let rest = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "instance \(number + 1): \(rest.suffix(2000))")
        }
        #expect(status["embedded"] as? Int == count && status["failed"] as? Int == 0 && status["leased"] as? Int == 0, "\(status)")

        // Provider-side count: every text the model embedded, from all three instances.
        let stats = try #require(try JSONSerialization.jsonObject(with: try await get("\(front)/__stats/\(token)")) as? [String: Any])
        let sent = try #require(stats["texts"] as? Int)
        let duplicates = sent - count
        print("three instances, one killed: \(count) repos, \(sent) texts embedded by the model (\(duplicates) twice), \(stats["embed_calls"] ?? 0) calls")
        // A lease (60 s) far longer than a batch takes, even on a loaded machine: only the killed
        // instance's leased batches (2 workers x 10) may be embedded twice.
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
        let repos = try GitHubStarred.parse(Data(contentsOf: cli.folder.appendingPathComponent("stars.json")), source: "stars.json").repos
        let sample = stride(from: 0, to: repos.count, by: 40).map { repos[$0] }
        let builder = try TextBuilder()
        let texts = sample.map { builder.text(for: $0) }
        let answer = try #require(try JSONSerialization.jsonObject(with: try await get("\(front)/__direct", body: try JSONSerialization.data(withJSONObject: ["texts": texts]))) as? [String: Any])
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
