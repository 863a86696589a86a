import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
@testable import EmbedStarSurrealStore
import EmbedStarTesting
import Foundation
import Logging
import SurrealClient
import Testing

/// A SurrealStore on a fresh database of the dev server, and a client on the same database.
struct StoreFixture {
    let store: SurrealStore
    let client: SurrealClient
    let database: String

    init(_ scheme: String, database: String? = nil, instance: String = "test", address: String? = nil,
         configure: (inout SurrealStore.Configuration) -> Void = { _ in }) throws {
        let database = database ?? "s\(UUID().uuidString.prefix(8).lowercased())"
        self.database = database
        let address = try #require(address ?? DevServer.address)
        var configuration = SurrealStore.Configuration()
        configuration.url = "\(scheme)://\(address)"
        configuration.namespace = "test"
        configuration.database = database
        configuration.poolSize = 4
        configure(&configuration)
        store = try SurrealStore(configuration: configuration, instanceID: instance, logger: Logger(label: "test"))
        client = SurrealClient(configuration: try DevServer.configuration("http", address: address, database: database))
    }

    /// Inserts repos as the collector would, trying again on a transaction conflict (on
    /// SurrealDB 2.x, tests creating their databases at once conflict on the namespace).
    func insert(_ repos: [Repo]) async throws {
        for chunk in stride(from: 0, to: repos.count, by: 500).map({ Array(repos[$0..<min($0 + 500, repos.count)]) }) {
            try await setUp("INSERT INTO repo $records RETURN NONE", ["records": .array(chunk.map(\.surrealRecord))])
        }
    }

    /// Runs statements that set up the test's database as a collector or an older version
    /// would, in one transaction, trying again on a conflict (on SurrealDB 2.x, tests creating
    /// their databases at once conflict on the namespace). The transaction makes a retry start
    /// from nothing: outside one, 2.x keeps the statements before the conflicting one.
    @discardableResult
    func setUp(_ sql: String, _ variables: [String: SurrealValue] = [:]) async throws -> [SurrealValue] {
        var attempt = 0
        while true {
            do {
                return try await client.query("BEGIN TRANSACTION;\n\(sql);\nCOMMIT TRANSACTION;", variables)
            } catch let error as SurrealError where error.kind == .conflict && attempt < 10 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 10...(40 << min(attempt, 4)))))
            }
        }
    }

    func close() async {
        await store.shutdown()
        await client.close()
    }
}

extension Repo {
    var surrealRecord: SurrealValue {
        guard case .object(var fields) = SurrealValue(json: jsonValue) else { return .null }
        fields["id"] = .recordID(RecordID(parsing: id.rawValue)!)  // synthetic ids are plain `repo:key`
        return .object(fields)
    }
}

@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct StoreTests {
    static let schemes = ["ws", "http"]
    let model = "mock/mock-embed@16"

    func claim(_ store: SurrealStore, _ owner: String, limit: Int = 50, lease: Duration = .seconds(60)) async throws -> [ClaimedRepo] {
        try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: lease, modelIdentity: model))
    }

    /// The contract every store keeps (EmbedStarTesting); the second handle talks HTTP to the
    /// database the first reaches over WebSocket, as another instance would.
    @Test(arguments: StoreCheck.allCases)
    func conformance(_ check: StoreCheck) async throws {
        let database = "c\(UUID().uuidString.prefix(8).lowercased())"
        @Sendable func store(_ scheme: String, _ instance: String) throws -> SurrealStore {
            var configuration = SurrealStore.Configuration()
            configuration.url = "\(scheme)://\(try #require(DevServer.address))"
            configuration.namespace = "test"
            configuration.database = database
            configuration.poolSize = 4
            return try SurrealStore(configuration: configuration, instanceID: instance, logger: Logger(label: "test"))
        }
        try await StoreConformance(make: { try store("ws", "test") }, second: { _ in try store("http", "other") }).run(check)
    }

    @Test(arguments: schemes)
    func migrationsAreIdempotentAndSafeConcurrently(_ scheme: String) async throws {
        let first = try StoreFixture(scheme)
        let second = try StoreFixture(scheme, database: first.database, instance: "other")
        defer { Task { await first.close(); await second.close() } }
        try await first.insert(SyntheticRepos.generate(count: 20))
        async let a: Void = first.store.prepare()
        async let b: Void = second.store.prepare()
        _ = try await (a, b)
        try await first.store.prepare()
        let versions = try await first.client.query("SELECT VALUE record::id(id) FROM embed_star_migration").first?.array
        #expect(versions.map { Set($0) } == Set((1...Migrations.newest).map { SurrealValue.int(Int64($0)) }))
        // Repos that existed before the migration are pending and counted.
        var stats = try await first.store.stats(modelIdentity: model)
        #expect(stats.pending == 20 && stats.total == 20)
        // Counts follow inserts and deletes.
        try await first.insert(SyntheticRepos.generate(count: 25).suffix(5))
        _ = try await first.client.query("DELETE repo:syn0, repo:syn1")
        stats = try await first.store.stats(modelIdentity: model)
        #expect(stats.total == 23 && stats.pending == 23)
    }

    /// A database migrated by an older embed-star (versions 1-4: four events, a typed vector)
    /// ends with one event and an untyped vector, and the queue and counts still follow the
    /// collector's inserts, changes and deletes; vectors written before and after read back.
    @Test func aDatabaseOfTheFourEventSchemaMovesToOneEvent() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        let dialect = try SurrealDialect(serverVersion: try await fixture.client.version())
        let old = Migrations(table: "repo", watchedFields: SurrealStore.collectorFields, dialect: dialect,
                             found: .init(tableDefinition: "DEFINE TABLE repo TYPE ANY SCHEMAFULL"))
        for migration in old.all where migration.version <= 4 {
            try await fixture.setUp((migration.statements + [
                "CREATE \(dialect.recordFunction)('embed_star_migration', \(migration.version)) SET summary = 'old'",
            ]).joined(separator: ";\n"))
        }
        var info = try await fixture.client.query("INFO FOR TABLE repo").last
        #expect(Set(info?["events"].map(Self.keys) ?? []) == ["embed_star_enqueue", "embed_star_dequeue", "embed_star_count_up", "embed_star_count_down"])
        #expect(info?["fields"]?["embedding"] != nil)
        try await fixture.insert(SyntheticRepos.generate(count: 4))

        try await fixture.store.prepare()
        info = try await fixture.client.query("INFO FOR TABLE repo").last
        #expect(info?["events"].map(Self.keys) == ["embed_star_repo"])
        #expect(info?["fields"]?["embedding"] == nil)
        #expect(Self.keys(info?["fields"]).allSatisfy { !$0.hasPrefix("embedding[") && !$0.hasPrefix("embedding.") })
        #expect(try await fixture.store.stats(modelIdentity: model).total == 4)
        try await fixture.insert(SyntheticRepos.generate(count: 6).suffix(2))
        _ = try await fixture.client.query("DELETE repo:syn0")
        var stats = try await fixture.store.stats(modelIdentity: model)
        #expect(stats.total == 5 && stats.pending == 5)
        let claimed = try await claim(fixture.store, "a")
        #expect(claimed.count == 5)
        let writes = claimed.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [0.6, 0.8], contentHash: "h", generatedAt: Date()))
        }
        #expect(Set(try await fixture.store.write(writes, owner: "a").values) == [.applied])
        stats = try await fixture.store.stats(modelIdentity: model)
        #expect(stats.embedded == 5 && stats.pending == 0)
        let stored = try await fixture.client.query("SELECT VALUE embedding FROM ONLY repo:syn1").last
        #expect(stored?.floatArray == [0.6, 0.8])
        // A change of a watched field queues the repo again; a write of the vector alone does not.
        _ = try await fixture.client.query("UPDATE repo:syn1 SET description = 'changed'; UPDATE repo:syn2 SET embedding_hash = 'other'")
        #expect(try await claim(fixture.store, "b").map(\.repo.id.rawValue) == ["repo:syn1"])
    }

    /// A collector's `SCHEMAFULL` table keeps a defined vector field: without one the engine
    /// would drop every vector written.
    @Test func aSchemafullTableKeepsItsVectorField() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        // Each collector field and its members (SurrealDB 2 drops undefined members of an object).
        let fields = SurrealStore.collectorFields.flatMap { ["DEFINE FIELD \($0) ON repo TYPE any", "DEFINE FIELD \($0).* ON repo TYPE any"] }
        try await fixture.setUp((["DEFINE TABLE repo SCHEMAFULL"] + fields).joined(separator: ";\n"))
        try await fixture.insert(SyntheticRepos.generate(count: 2))
        try await fixture.store.prepare()
        let info = try await fixture.client.query("INFO FOR TABLE repo").last
        #expect(info?["fields"]?["embedding"] != nil)
        let claimed = try await claim(fixture.store, "a")
        #expect(claimed.count == 2)
        let writes = claimed.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [0.6, 0.8], contentHash: "h", generatedAt: Date()))
        }
        #expect(Set(try await fixture.store.write(writes, owner: "a").values) == [.applied])
        let stored = try await fixture.client.query("SELECT VALUE embedding FROM repo").last?.array ?? []
        #expect(stored.map(\.floatArray) == [[0.6, 0.8], [0.6, 0.8]])
    }

    static func keys(_ object: SurrealValue?) -> [String] {
        if case .object(let fields) = object { return fields.keys.sorted() }
        return []
    }

    @Test(arguments: schemes)
    func claimsAreLeasedExclusivelyAndExpiredLeasesAreTakenOver(_ scheme: String) async throws {
        let fixture = try StoreFixture(scheme)
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.insert(SyntheticRepos.generate(count: 60))
        var ids = try await withThrowingTaskGroup(of: [RepoID].self) { group in
            for owner in 0..<4 { group.addTask { try await claim(fixture.store, "o\(owner)", limit: 20).map(\.repo.id) } }
            return try await group.reduce(into: [RepoID]()) { $0 += $1 }
        }
        #expect(Set(ids).count == ids.count)
        #expect(ids.count >= 20)  // contention may leave some for later, never hand one out twice
        while true {
            let more = try await claim(fixture.store, "sweeper", limit: 20).map(\.repo.id)
            if more.isEmpty { break }
            ids += more
        }
        #expect(Set(ids).count == ids.count)
        #expect(ids.count == 60)
        #expect(try await claim(fixture.store, "late").isEmpty)
        let stats = try await fixture.store.stats(modelIdentity: model)
        #expect(stats.leased == 60 && stats.pending == 60)

        let fresh = try StoreFixture(scheme)
        defer { Task { await fresh.close() } }
        try await fresh.store.prepare()
        try await fresh.insert(SyntheticRepos.generate(count: 3))
        let short = try await claim(fresh.store, "a", lease: .milliseconds(200))
        #expect(short.count == 3)
        try await Task.sleep(for: .milliseconds(400))
        let takenOver = try await claim(fresh.store, "b")
        #expect(takenOver.count == 3)
        let write = RepoWrite(id: short[0].repo.id, revision: short[0].revision, modelIdentity: model,
                              change: .embedded(vector: [1, 0], contentHash: "h", generatedAt: Date()))
        #expect(try await fresh.store.write([write], owner: "a")[short[0].repo.id] == .leaseLost)
    }

    @Test(arguments: schemes)
    func repoUpdatedBetweenClaimAndWriteStaysPendingWithItsNewText(_ scheme: String) async throws {
        let fixture = try StoreFixture(scheme)
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.insert(SyntheticRepos.generate(count: 2))
        let claimed = try await claim(fixture.store, "a")
        let target = claimed[0].repo.id
        _ = try await fixture.client.query("UPDATE type::record($id) SET description = 'rewritten while embedding'", ["id": .string(target.rawValue)])
        let writes = claimed.map {
            RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [0.6, 0.8], contentHash: "h", generatedAt: Date()))
        }
        let outcomes = try await fixture.store.write(writes, owner: "a")
        #expect(outcomes[target] == .changedSinceClaim)
        #expect(outcomes[claimed[1].repo.id] == .applied)
        let again = try await claim(fixture.store, "b")
        #expect(again.map(\.repo.id) == [target])
        #expect(again.first?.repo.description == "rewritten while embedding")
    }

    @Test(arguments: schemes)
    func failuresCountAttemptsAndResetFailedBringsThemBack(_ scheme: String) async throws {
        let fixture = try StoreFixture(scheme)
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.insert(SyntheticRepos.generate(count: 2))
        var claimed = try await claim(fixture.store, "a")
        let failure = { (claim: ClaimedRepo, permanent: Bool) in
            RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "boom \(permanent)", permanent: permanent, retryAfter: .zero)
        }
        var outcomes = try await fixture.store.recordFailures([failure(claimed[0], false), failure(claimed[1], true)], owner: "a", maxAttempts: 2)
        #expect(outcomes[claimed[0].repo.id] == .willRetry(attempts: 1))
        #expect(outcomes[claimed[1].repo.id] == .failed(attempts: 1))
        claimed = try await claim(fixture.store, "a")
        #expect(claimed.count == 1 && claimed[0].attempts == 1)
        outcomes = try await fixture.store.recordFailures([failure(claimed[0], false)], owner: "a", maxAttempts: 2)
        #expect(outcomes[claimed[0].repo.id] == .failed(attempts: 2))
        let row = try await fixture.client.query("SELECT embedding_attempts, embedding_error FROM ONLY type::record($id)", ["id": .string(claimed[0].repo.id.rawValue)])
        #expect(row.first?["embedding_attempts"] == 2)
        #expect(row.first?["embedding_error"] == "boom false")
        #expect(try await fixture.store.stats(modelIdentity: model).failed == 2)
        #expect(try await fixture.store.resetFailed() == 2)
        #expect(try await claim(fixture.store, "a").count == 2)
    }

    /// The index is not defined while another instance still holds leases (its writes would
    /// wait for the build); the store's idle work once they are written defines it.
    @Test func theIndexWaitsForOtherInstancesLeases() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.insert(SyntheticRepos.generate(count: 30, seed: 8))
        try await fixture.store.prepare()
        func write(_ claimed: [ClaimedRepo], _ owner: String) async throws {
            let outcomes = try await fixture.store.write(claimed.map {
                RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model,
                          change: .embedded(vector: MockProvider.vector(for: $0.repo.fullName, dimensions: 16), contentHash: "h", generatedAt: Date()))
            }, owner: owner)
            #expect(outcomes.values.allSatisfy { $0 == .applied })
        }
        func indexed() async throws -> Bool {
            try await fixture.client.query("SELECT VALUE dimensions FROM ONLY embed_star_meta:hnsw").first == 16
        }
        let held = try await claim(fixture.store, "a", limit: 10)
        let rest = try await claim(fixture.store, "b", limit: 50)
        #expect(held.count == 10 && rest.count == 20)
        try await write(rest, "b")
        #expect(try await claim(fixture.store, "b").isEmpty)
        try await fixture.store.maintain(owner: "b", modelIdentity: model)
        #expect(try await !indexed(), "defined while instance a still held 10 leases")
        try await write(held, "a")
        #expect(try await claim(fixture.store, "b").isEmpty)
        #expect(try await !indexed(), "a claim does no idle work")
        try await fixture.store.maintain(owner: "b", modelIdentity: model)
        #expect(try await indexed())
    }

    @Test(arguments: schemes)
    func backfillOf2000ReposWritesEachItsOwnVectorAndSearchFindsIt(_ scheme: String) async throws {
        let fixture = try StoreFixture(scheme)
        defer { Task { await fixture.close() } }
        let repos = SyntheticRepos.generate(count: 2000, seed: 21)
        try await fixture.insert(repos)
        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.dimensions = 16
        let provider = MockProvider(configuration: providerConfiguration)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 100
        configuration.parallelWorkers = 4
        let pipeline = try await Pipeline.start(provider: provider, providerName: "mock", store: fixture.store, configuration: configuration,
                                                instanceID: "test", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == 2000)
        // Each text is sent once, unless a store error made a batch go round again.
        let sent = provider.statistics.texts
        #expect(sent >= 2000)
        let stats = try await fixture.store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats == StoreStats(total: 2000, embedded: 2000, pending: 0, failed: 0, leased: 0))
        let builder = try TextBuilder(maxTokens: pipeline.model.maxInputTokens)
        let rows = try await fixture.client.query("SELECT id, embedding, embedding_hash, embedding_model FROM repo").first?.array ?? []
        #expect(rows.count == 2000)
        let byID = Dictionary(uniqueKeysWithValues: repos.map { ($0.id.rawValue, $0) })
        var wrong = 0
        for row in rows {
            guard let id = row["id"]?.recordID?.description, let repo = byID[id] else { wrong += 1; continue }
            let text = builder.text(for: repo)
            if row["embedding"]?.floatArray != MockProvider.vector(for: text, dimensions: 16)
                || row["embedding_hash"]?.string != ContentHash.make(text: text, model: pipeline.modelIdentity) {
                wrong += 1
            }
        }
        #expect(wrong == 0)

        // The queue ran dry: the HNSW index exists now, for 16 dimensions.
        let meta = try await fixture.client.query("SELECT VALUE dimensions FROM ONLY embed_star_meta:hnsw")
        #expect(meta.first == 16)
        let info = try await fixture.client.query("INFO FOR TABLE repo")
        #expect("\(info)".contains("embed_star_hnsw"))

        // Search: the vector of a repo's own text finds that repo first.
        for repo in [repos[7], repos[1234], repos[1999]] {
            let hits = try await fixture.store.nearest(to: MockProvider.vector(for: builder.text(for: repo), dimensions: 16), limit: 3, filter: SearchFilter())
            #expect(hits.first?.repo.id == repo.id)
            #expect((hits.first?.score ?? 0) > 0.999)
        }
        if let language = repos[7].language {
            let filtered = try await fixture.store.nearest(to: MockProvider.vector(for: "x", dimensions: 16), limit: 10, filter: SearchFilter(language: language))
            #expect(!filtered.isEmpty && filtered.allSatisfy { $0.repo.language == language })
        }

        // The collector bumps stars and updated_at everywhere: every repo is checked, none re-embedded.
        _ = try await fixture.client.query("UPDATE repo SET stars += 1, updated_at = time::now() RETURN NONE")
        let rerun = try await pipeline.backfill()
        #expect(rerun.unchanged == 2000)
        #expect(rerun.providerCalls == 0)
        #expect(provider.statistics.texts == sent)

        // A model with another dimension: the index gives way, every repo gets its new vector.
        providerConfiguration.dimensions = 8
        let other = try await Pipeline.start(provider: MockProvider(configuration: providerConfiguration), providerName: "mock",
                                             store: fixture.store, configuration: configuration, instanceID: "test", logger: Logger(label: "test"))
        #expect(try await other.backfill().embedded == 2000)
        #expect(try await fixture.store.stats(modelIdentity: other.modelIdentity).embedded == 2000)
        let hits = try await fixture.store.nearest(to: MockProvider.vector(for: builder.text(for: repos[5]), dimensions: 8), limit: 1, filter: SearchFilter())
        #expect(hits.first?.repo.id == repos[5].id)
    }

    @Test(arguments: schemes)
    func unreadableRecordIsMarkedFailedAndDoesNotStopTheClaim(_ scheme: String) async throws {
        let fixture = try StoreFixture(scheme)
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.insert(SyntheticRepos.generate(count: 3))
        _ = try await fixture.client.query("CREATE repo:broken SET full_name = 42, topics = 'not a list'")
        let claimed = try await claim(fixture.store, "a")
        #expect(claimed.count == 3)
        let stats = try await fixture.store.stats(modelIdentity: model)
        #expect(stats.failed == 1)
    }

    @Test(arguments: schemes)
    func upsertLikeACollectorQueuesOnlyWhatChanged(_ scheme: String) async throws {
        let fixture = try StoreFixture(scheme)
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        var repos = SyntheticRepos.generate(count: 3, seed: 30)
        try await fixture.store.upsert(repos)
        #expect(try await fixture.store.stats(modelIdentity: model).pending == 3)
        let claimed = try await claim(fixture.store, "a")
        let writes = claimed.map { RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [1, 0], contentHash: "h", generatedAt: Date())) }
        _ = try await fixture.store.write(writes, owner: "a")
        try await fixture.store.upsert(repos)
        #expect(try await fixture.store.stats(modelIdentity: model) == StoreStats(total: 3, embedded: 3, pending: 0, failed: 0, leased: 0))
        repos[1].description = "changed by the collector"
        try await fixture.store.upsert(repos)
        let again = try await claim(fixture.store, "b")
        #expect(again.map(\.repo.id) == [repos[1].id])
        #expect(again.first?.repo.description == "changed by the collector")
        #expect(again.first?.embeddedHash == "h")  // the old vector stays until the new one is written
    }

    @Test func unicodeAndOddIdsRoundTrip() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        _ = try await fixture.client.query("CREATE repo:⟨odd-id.with.dots⟩ SET full_name = 'ünï/cödé', description = '日本語 👍'; CREATE repo:12345 SET full_name = 'num/id'")
        let claimed = try await claim(fixture.store, "a")
        #expect(Set(claimed.map(\.repo.fullName)) == ["ünï/cödé", "num/id"])
        let writes = claimed.map { RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [1, 0], contentHash: "h", generatedAt: Date())) }
        let outcomes = try await fixture.store.write(writes, owner: "a")
        #expect(outcomes.values.allSatisfy { $0 == .applied }, "\(outcomes)")
        #expect(try await fixture.store.stats(modelIdentity: model).embedded == 2)
    }
}

/// `stats` and `coverage` count vectors from the model index, with the model written into the
/// statement (SurrealDB 3 reads every record when it is a parameter: 9.5 s at 100,000 repos).
@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct ModelCountTests {
    @Test func countsOfModelsWithAnyNameMatchTheRecords() async throws {
        let fixture = try StoreFixture("ws")
        defer { Task { await fixture.close() } }
        try await fixture.store.prepare()
        try await fixture.insert(SyntheticRepos.generate(count: 12, seed: 40))
        // A quote and a backslash (escaped in the text), a tab (passed as a parameter), unicode.
        let models = ["it's a \\ model/x@2", "tab\tmodel@2", "mödel/ünï@2", "plain/model@2"]
        for (index, model) in models.enumerated() {
            // An instance per model, each newer than the last (the newest is served), embeds
            // 1, 2, 3 and 4 repos that no model embedded yet; 2 repos stay pending.
            let share = try await fixture.store.claimPending(ClaimRequest(owner: "o\(index)", limit: index + 1, leaseDuration: .seconds(60),
                                                                          modelIdentity: model, staleLimit: 0))
            #expect(share.count == index + 1)
            let writes = share.map { RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: model, change: .embedded(vector: [1, 0], contentHash: "h", generatedAt: Date())) }
            let outcomes = try await fixture.store.write(writes, owner: "o\(index)")
            #expect(outcomes.values.allSatisfy { $0 == .applied }, "\(model): \(outcomes)")
        }
        let direct = try await fixture.client.query("SELECT embedding_model, count() AS n FROM repo WHERE embedding != NONE GROUP BY embedding_model").first?.array ?? []
        let expected = Dictionary(uniqueKeysWithValues: direct.compactMap { row in row["embedding_model"]?.string.map { ($0, Int(row["n"]?.int ?? 0)) } })
        #expect(expected == [models[0]: 1, models[1]: 2, models[2]: 3, models[3]: 4])
        #expect(try await fixture.store.coverage() == expected)
        for model in models {
            // Vectors per model from the index; only the served (last) model's count as embedded:
            // the others' repos are queued for it.
            let counts = try await fixture.store.queueCounts(model: model)
            #expect(counts.current == expected[model], "\(model): \(counts)")
            let stats = try await fixture.store.stats(modelIdentity: model)
            #expect(stats.total == 12 && stats.embedded == (model == models[3] ? 4 : 0), "\(model): \(stats)")
        }
        // On 3.x the count is read from the index, not the records (the plan names the operator).
        let dialect = try await fixture.store.dialect()
        if dialect.major >= 3 {
            let plan = try await fixture.client.query(SurrealStore.countSelect("repo", where: "embedding_model", is: models[0], parameter: "$m") + " EXPLAIN")
            #expect("\(plan)".contains("IndexCountScan"), "\(plan)")
        }
    }

    @Test func aModelNameIsWrittenAsAnEscapedLiteral() {
        #expect(SurrealDialect.literal("it's a \\ x") == #"'it\'s a \\ x'"#)
        #expect(SurrealDialect.literal("tab\there") == nil)
        #expect(SurrealStore.count("repo", where: "embedding_model", is: "tab\there", parameter: "$m").contains("= $m GROUP ALL"))
    }
}
