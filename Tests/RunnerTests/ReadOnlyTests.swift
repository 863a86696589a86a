import EmbedStarCore
import Foundation
@testable import EmbedStarSQLiteStore
@testable import EmbedStarSurrealStore
import Logging
import SurrealClient
import EmbedStarTesting
import Testing

/// The commands that do not migrate, against a database at an older schema: each refuses with
/// what to run and changes nothing; `migrate` brings it up; afterwards they work.
enum ReadOnlyCommands {
    /// Every command that must not migrate, with arguments that would otherwise succeed.
    static let commands: [[String]] = [
        ["status"], ["status", "--json"], ["search", "a parser"], ["report", "--out", "report.html", "--sample", "0", "--map-size", "0"],
        ["inspect", "repo:1"], ["requeue", "repo:1"], ["retry-failed"], ["retry-failed", "--reason", "x", "--dry-run"],
        ["import", "stars.json"], ["migrate", "--check"],
    ]

    /// Runs each command, expecting a non-zero exit whose message names both schema versions
    /// and `embed-star migrate`, and the snapshot unchanged after each.
    static func expectRefusals(_ cli: CLI, version: Int, required: Int, snapshot: () async throws -> String) async throws {
        let before = try await snapshot()
        _ = try await cli.run(["seed", "--count", "3", "--format", "github", "--out", "stars.json"])
        for command in commands {
            let result = try await cli.run(command)
            #expect(result.status != 0, "\(command) on schema \(version) must refuse: \(result.stdout)")
            if command != ["migrate", "--check"] {
                #expect(result.stderr.contains("the database is at schema \(version), this binary needs \(required): run `embed-star migrate`"),
                        "\(command): \(result.stderr.suffix(600))")
            } else {
                #expect(result.stdout.contains("at schema \(version); this binary needs \(required)"), "\(result.stdout)")
            }
            let after = try await snapshot()
            #expect(after == before, "\(command) changed the files, the schema or the data: before \(before.prefix(200)), after \(after.prefix(200))")
        }
    }
}

@Suite(.serialized) struct ReadOnlyCommandsTests {
    static let config = """
        provider: mock
        store: sqlite
        monitoring:
          enabled: false
        providers:
          mock:
            dimensions: 8
        stores:
          sqlite:
            path: stars.sqlite
        """

    /// The files beside the database, the database file's bytes, its schema and its data, as
    /// text (sqlite3, another process, reads last: its own files are not listed).
    func snapshot(_ cli: CLI) async throws -> String {
        let file = cli.folder.appendingPathComponent("stars.sqlite").path
        guard FileManager.default.fileExists(atPath: file) else { return "no file" }
        // A reader of a WAL file makes the log and its index beside it if they are missing (SQLite
        // does, read-only or not): listed only when the log holds something.
        let names = try FileManager.default.contentsOfDirectory(atPath: cli.folder.path)
            .filter { $0.hasPrefix("stars.sqlite") && !$0.hasSuffix("-shm") }.sorted()
            .filter { name in
                guard name.hasSuffix("-wal") else { return true }
                let size = (try? FileManager.default.attributesOfItem(atPath: cli.folder.appendingPathComponent(name).path)[.size] as? Int) ?? 0
                return size > 0
            }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let files = "files: \(names.joined(separator: " ")); \(bytes.count) bytes, \(bytes.reduce(into: UInt64(14_695_981_039_346_656_037)) { $0 = ($0 ^ UInt64($1)) &* 1_099_511_628_211 })\n"
        let check = try Subprocess(URL(fileURLWithPath: "/usr/bin/sqlite3"), [file, """
            SELECT type, name, sql FROM sqlite_master ORDER BY name;
            SELECT version FROM embed_star_migration ORDER BY version;
            SELECT id, revision, failed, attempts, embedding_hash, lease_owner FROM repo ORDER BY id;
            """])
        _ = await check.exit()
        #expect(check.stderr.isEmpty, "\(check.stderr)")
        return files + check.stdout
    }

    @Test func commandsRefuseAnOlderSchemaAndChangeNothingUntilMigrate() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", Self.config)
        let required = SQLiteMigrations.newest
        let store = SQLiteStore(configuration: .init(path: "stars.sqlite"), directory: cli.folder)
        try await store.migrate(through: required - 1)
        try await store.upsert(StoreConformance.sampleRepos(count: 3).enumerated().map { index, repo in
            var repo = repo
            repo.id = RepoID("repo:\(index + 1)")
            return repo
        })
        await store.shutdown()
        // The database file alone, as a copy of it would be: a command that opened it the way
        // `run` does would make the lock and codes files beside it.
        for name in try FileManager.default.contentsOfDirectory(atPath: cli.folder.path) where name.hasPrefix("stars.sqlite.") {
            try FileManager.default.removeItem(at: cli.folder.appendingPathComponent(name))
        }
        try await ReadOnlyCommands.expectRefusals(cli, version: required - 1, required: required) { try await snapshot(cli) }

        let before = try await snapshot(cli)
        let migrated = try await cli.run(["migrate"])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("Migrated the database from schema \(required - 1) to \(required)."), "\(migrated.stdout)")
        #expect(try await snapshot(cli) != before)
        #expect(try await cli.run(["migrate", "--check"]).status == 0)
        let status = try await cli.status()
        #expect(status["total"] as? Int == 3 && status["pending"] as? Int == 3, "\(status)")
        #expect(try await cli.run(["inspect", "repo:1"]).status == 0)
    }

    /// `status` on a file that does not exist says so and does not create it; `import` into it
    /// sets up the schema (nothing of embed-star can be running on a new database).
    @Test func aMissingDatabaseIsNotCreatedByStatusButByImport() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", Self.config)
        let status = try await cli.run(["status"])
        #expect(status.status == 1)
        #expect(status.stderr.contains("the database has no embed-star schema yet"), "\(status.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.folder.appendingPathComponent("stars.sqlite").path), "status created the database")
        _ = try await cli.run(["seed", "--count", "5", "--format", "github", "--out", "stars.json"])
        let imported = try await cli.run(["import", "stars.json"])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try await cli.status()["total"] as? Int == 5)
    }

    /// The provider down (a port nothing listens on): `status` answers from the store, with the
    /// model it last served, and says why.
    @Test func statusAnswersFromTheStoreWhileTheProviderIsDown() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", Self.config)
        _ = try await cli.run(["seed", "--count", "20", "--format", "github", "--out", "stars.json"])
        #expect(try await cli.run(["import", "stars.json"]).status == 0)
        #expect(try await cli.run(["backfill"]).status == 0)
        let down = ["--embedding-provider", "ollama", "--set", "providers.ollama.url=http://127.0.0.1:9", "--set", "providers.ollama.model=nomic-embed-text"]
        let started = ContinuousClock.now
        let result = try await cli.run(["status"] + down)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(result.stdout.contains("model:    mock/mock-embed@8 (the model the store last served; the provider did not answer"), "\(result.stdout)")
        #expect(result.stdout.contains("embedded: 20"), "\(result.stdout)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try await cli.run(["status", "--json"] + down).stdout.utf8)) as? [String: Any])
        #expect(json["model_source"] as? String == "store", "\(json)")

        // A provider that takes the connection and never answers: the 5 s deadline ends the wait.
        let silent = try Subprocess(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", """
            import socket, time
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
            print(s.getsockname()[1], flush=True)
            held = []
            while True:
                c, _ = s.accept(); held.append(c)
            """])
        defer { silent.signal(SIGKILL) }
        _ = try await waitUntil(timeout: .seconds(10), every: .milliseconds(50)) { silent.stdout.contains("\n") }
        let port = try #require(Int(silent.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(silent.stdout) \(silent.stderr)")
        let hanging = ["--embedding-provider", "ollama", "--set", "providers.ollama.url=http://127.0.0.1:\(port)", "--set", "providers.ollama.model=nomic-embed-text"]
        let waited = ContinuousClock.now
        let answer = try await cli.run(["status"] + hanging)
        let took = ContinuousClock.now - waited
        #expect(answer.status == 0 && answer.stdout.contains("the provider did not answer"), "\(answer.stdout) \(answer.stderr)")
        #expect(took < .seconds(20), "status waited \(took) for a provider that never answers")  // its check gives up after 5 s
    }

    /// `inspect` on a failed, a pending, a leased and an embedded repo; `requeue` and
    /// `retry-failed --reason` on them.
    @Test func inspectRequeueAndRetryByReason() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        try cli.write("plugins.yaml", Self.config)
        _ = try await cli.run(["seed", "--count", "4", "--format", "github", "--out", "stars.json"])
        #expect(try await cli.run(["import", "stars.json"]).status == 0)
        let store = SQLiteStore(configuration: .init(path: "stars.sqlite"), directory: cli.folder)
        defer { Task { await store.shutdown() } }
        let model = try #require(try await cli.status()["model"] as? String)
        let claimed = try await store.claimPending(ClaimRequest(owner: "worker-1", limit: 3, leaseDuration: .seconds(600), modelIdentity: model))
        #expect(claimed.count == 3)
        _ = try await store.write([RepoWrite(id: claimed[0].repo.id, revision: claimed[0].revision, modelIdentity: model,
                                             change: .embedded(vector: [1, 0, 0, 0, 0, 0, 0, 0], contentHash: "0123456789abcdef0123", generatedAt: Date()))],
                                   owner: "worker-1")
        _ = try await store.recordFailures([RepoFailure(id: claimed[1].repo.id, revision: claimed[1].revision,
                                                        reason: "the provider rejected the input: HTTP 400 for \"\(claimed[1].repo.fullName)\"",
                                                        permanent: true, retryAfter: .zero)], owner: "worker-1", maxAttempts: 5)
        let pending = try #require(try await store.scan(modelIdentity: model, after: nil, limit: 10).repos.first { stored in
            !claimed.contains { $0.repo.id == stored.repo.id }
        })
        func inspect(_ id: RepoID) async throws -> [String: Any] {
            let result = try await cli.run(["inspect", id.rawValue, "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let list = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
            return try #require(list.first)
        }
        let embedded = try await inspect(claimed[0].repo.id)
        #expect(embedded["state"] as? String == "embedded" && embedded["dimensions"] as? Int == 8 && embedded["text_matches"] as? Bool == false,
                "the hash written is not the text's: \(embedded)")
        let failed = try await inspect(claimed[1].repo.id)
        #expect(failed["state"] as? String == "failed" && failed["attempts"] as? Int == 1 && (failed["last_error"] as? String)?.contains("HTTP 400") == true,
                "\(failed)")
        let leased = try await inspect(claimed[2].repo.id)
        #expect(leased["state"] as? String == "pending" && leased["lease_holder"] as? String == "worker-1" && leased["lease_expires"] != nil, "\(leased)")
        let waiting = try await inspect(pending.repo.id)
        #expect(waiting["state"] as? String == "pending" && waiting["lease_holder"] == nil && waiting["queued_since"] != nil, "\(waiting)")
        let byName = try await cli.run(["inspect", claimed[1].repo.fullName.uppercased()])
        #expect(byName.stdout.contains("state:       failed") && byName.stdout.contains("last error:  the provider rejected"), "\(byName.stdout)")
        #expect(try await cli.run(["inspect", "nobody/nothing"]).status == 1)

        let dry = try await cli.run(["retry-failed", "--reason", "http #", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("Would put 1 failed repos back in the queue"), "\(dry.stdout)")
        #expect(try await cli.status()["failed"] as? Int == 1, "a dry run changes nothing")
        let other = try await cli.run(["retry-failed", "--reason", "timed out"])
        #expect(other.stdout.contains("0 failed repos are pending again"), "\(other.stdout)")
        let retried = try await cli.run(["retry-failed", "--reason", "rejected the input"])
        #expect(retried.stdout.contains("1 failed repos are pending again"), "\(retried.stdout)")
        #expect(try await cli.status()["failed"] as? Int == 0)

        let requeued = try await cli.run(["requeue", claimed[0].repo.id.rawValue, "repo:missing"])
        #expect(requeued.status == 1 && requeued.stdout.contains("1 repos are pending again") && requeued.stderr.contains("no repo repo:missing"),
                "\(requeued.stdout) \(requeued.stderr)")
        #expect(try await inspect(claimed[0].repo.id)["state"] as? String == "pending")
        try await store.release([claimed[2].repo.id], owner: "worker-1")  // else backfill waits for the lease
        #expect(try await cli.run(["backfill"]).status == 0)
        let after = try await inspect(claimed[0].repo.id)
        #expect(after["state"] as? String == "embedded" && after["text_matches"] as? Bool == true, "embedded again, from its text: \(after)")
    }
}

/// The same on SurrealDB (3.x and 2.x: scripts/test runs this suite on each engine).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] != nil, "needs the dev server (scripts/test)"))
struct ReadOnlySurrealTests {
    let surreal = ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] ?? ""

    @Test func commandsRefuseAnOlderSchemaAndChangeNothingUntilMigrate() async throws {
        let cli = try CLI()
        defer { cli.cleanUp() }
        let database = "ro\(UUID().uuidString.lowercased().prefix(8))"
        try cli.write("plugins.yaml", """
            provider: mock
            store: surreal
            monitoring:
              enabled: false
            providers:
              mock:
                dimensions: 8
            stores:
              surreal:
                url: ws://\(surreal)
                namespace: test
                database: \(database)
                pool_size: 1
            """)
        var configuration = SurrealStore.Configuration()
        configuration.url = "ws://\(surreal)"
        configuration.namespace = "test"
        configuration.database = database
        configuration.poolSize = 1
        let store = try SurrealStore(configuration: configuration, instanceID: "setup", logger: Logger(label: "test"))
        defer { Task { await store.shutdown() } }
        let required = Migrations.newest
        try await store.prepare(through: required - 1)
        try await store.upsert(StoreConformance.sampleRepos(count: 3).enumerated().map { index, repo in
            var repo = repo
            repo.id = RepoID("repo:\(index + 1)")
            return repo
        })
        // Definitions, migrations, embed-star's records and the repos with their queue entries.
        let snapshot = { () async throws -> [SurrealValue] in
            try await store.client.query("""
                INFO FOR DB; INFO FOR TABLE repo; INFO FOR TABLE embed_queue;
                SELECT * FROM embed_star_migration ORDER BY id; SELECT * FROM embed_star_meta ORDER BY id;
                SELECT * FROM embed_star_count ORDER BY id; SELECT * FROM repo ORDER BY id; SELECT * FROM embed_queue ORDER BY id;
                """)
        }
        let before = try await snapshot()
        try await ReadOnlyCommands.expectRefusals(cli, version: required - 1, required: required) { "\(try await snapshot() == before)" }

        let migrated = try await cli.run(["migrate"])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("Migrated the database from schema \(required - 1) to \(required)."), "\(migrated.stdout)")
        #expect(try await snapshot() != before)
        let status = try await cli.status()
        #expect(status["total"] as? Int == 3 && status["pending"] as? Int == 3, "\(status)")
        let inspected = try await cli.run(["inspect", "repo:1"])
        #expect(inspected.status == 0 && inspected.stdout.contains("state:       pending"), "\(inspected.stdout) \(inspected.stderr)")
    }
}
