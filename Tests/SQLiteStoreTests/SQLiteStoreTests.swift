import EmbedStarApp
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
@testable import EmbedStarSQLiteStore
import EmbedStarTesting
import Foundation
import GRDB
import Logging
import Testing

/// A fresh folder per test, removed by the caller.
func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-sqlite-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// A vector as the blob an SQL literal writes (`X'...'`), as an older version stored it.
func hexBlob(_ vector: [Float]) -> String {
    vector.map { String(format: "%08x", $0.bitPattern.byteSwapped) }.joined()
}

/// The rows of a table of the store's file.
func rowCount(_ store: SQLiteStore, _ table: String) async throws -> Int {
    try await DatabaseQueue(path: store.path).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM \(table)") ?? -1 }
}

/// The packed rows in the store's codes file.
func codeRows(_ store: SQLiteStore) async throws -> Int {
    try await DatabaseQueue(path: store.codesPath).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM code_block") ?? -1 }
}

/// Claims up to `limit` repos as `owner` and writes each its vector from `vectors` (model "m").
func claimAndWrite(_ store: SQLiteStore, _ vectors: [RepoID: [Float]], owner: String, limit: Int) async throws
    -> (claimed: [ClaimedRepo], outcomes: [RepoID: WriteOutcome]) {
    let claimed = try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: .seconds(60), modelIdentity: "m"))
    let outcomes = try await store.write(claimed.map {
        RepoWrite(id: $0.repo.id, revision: $0.revision, modelIdentity: "m", change: .embedded(vector: vectors[$0.repo.id]!, contentHash: "h", generatedAt: Date()))
    }, owner: owner)
    return (claimed, outcomes)
}

@Suite struct SQLiteStoreTests {
    @Test(arguments: StoreCheck.allCases)
    func conformance(_ check: StoreCheck) async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The second handle is another connection pool on the same file, as another process has.
        try await StoreConformance(make: { SQLiteStore(directory: folder) },
                                   second: { _ in SQLiteStore(directory: folder) }).run(check)
    }

    @Test func anUnreadableRecordIsMarkedFailedNotHandedOut() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        try await store.upsert(SyntheticRepos.generate(count: 3))
        try await store.execute("UPDATE repo SET record = '{\"full_name\": 42' WHERE id = 'repo:syn1'")
        let claimed = try await store.claimPending(ClaimRequest(owner: "a", limit: 10, leaseDuration: .seconds(60), modelIdentity: "m"))
        #expect(claimed.map(\.repo.id) == [RepoID("repo:syn0"), RepoID("repo:syn2")])
        let entry = try #require(try await store.entry(RepoID("repo:syn1")))
        #expect(entry.failed)
        #expect(entry.lastError?.contains("not JSON") == true)
        #expect(try await store.stats(modelIdentity: "m").failed == 1)
        await store.shutdown()
    }

    @Test func vectorsArePackedAsFloat32AndSurviveAReopen() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let vector: [Float] = [0.5, -1.25, .leastNonzeroMagnitude, 3.4e38]
        do {
            let store = SQLiteStore(directory: folder)
            try await store.prepare()
            try await store.upsert(SyntheticRepos.generate(count: 1))
            let claimed = try await store.claimPending(ClaimRequest(owner: "a", limit: 1, leaseDuration: .seconds(60), modelIdentity: "m"))
            _ = try await store.write([RepoWrite(id: claimed[0].repo.id, revision: claimed[0].revision, modelIdentity: "m",
                                                 change: .embedded(vector: vector, contentHash: "h", generatedAt: Date()))], owner: "a")
            await store.shutdown()
        }
        let reopened = SQLiteStore(directory: folder)
        try await reopened.prepare()
        let entry = try #require(try await reopened.entry(RepoID("repo:syn0")))
        #expect(entry.embedding == vector)
        #expect(try await reopened.stats(modelIdentity: "m").embedded == 1)
        let size = try FileManager.default.attributesOfItem(atPath: reopened.path)[.size] as? Int
        #expect(size != nil)
        await reopened.shutdown()
    }

    /// A file from before schema version 4 (vectors, no byte codes) gets its codes when a new
    /// version opens it, and its search finds each vector first, as before.
    @Test func aFileFromBeforeTheByteCodesGetsThemAtOpen() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let repos = SyntheticRepos.generate(count: 30)
        var random = SeededRandom(seed: 31)
        let vectors = repos.map { _ in (0..<48).map { _ in Float(random.nextUnit() * 2 - 1) } }
        do {
            let store = SQLiteStore(directory: folder)
            try await store.prepare()
            try await store.upsert(repos)
            let outcomes = try await claimAndWrite(store, Dictionary(uniqueKeysWithValues: zip(repos.map(\.id), vectors)), owner: "a", limit: 30).outcomes
            #expect(outcomes.count == 30 && Set(outcomes.values) == [.applied])
            // What version 3 left: no code table, the migration not on record.
            try await store.execute("""
                DROP TRIGGER repo_vector_uncoded_insert; DROP TRIGGER repo_vector_uncoded_update;
                DROP TABLE repo_vector_uncoded; DROP TABLE repo_vector_code; DELETE FROM embed_star_migration WHERE version = 4
                """)
            await store.shutdown()
        }
        let reopened = SQLiteStore(directory: folder)
        try await reopened.prepare()
        let codes = try await DatabaseQueue(path: reopened.path).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM repo_vector_code") }
        #expect(codes == 30)
        for (repo, vector) in zip(repos, vectors) {
            let hits = try await reopened.nearest(to: vector, limit: 3, filter: SearchFilter())
            #expect(hits.first?.repo.id == repo.id)
            #expect(abs((hits.first?.score ?? 0) - 1) < 1e-5, "the first hit's score is its exact cosine")
        }
        await reopened.shutdown()
    }

    /// A rolling deploy: a version from before the byte codes, still running, writes and
    /// changes vectors as it always did (no code). Search finds them by their floats at once,
    /// not by a stale code, and the next start codes them.
    @Test func vectorsAnOlderVersionWritesAreFoundAndCodedAtTheNextStart() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        let repos = SyntheticRepos.generate(count: 12)
        try await store.upsert(repos)
        var random = SeededRandom(seed: 37)
        let vectors = repos.map { _ in (0..<24).map { _ in Float(random.nextUnit() * 2 - 1) } }
        let byID = Dictionary(uniqueKeysWithValues: zip(repos.map(\.id), vectors))
        let claimed = try await claimAndWrite(store, byID, owner: "new", limit: 6).claimed
        // The older version: the other six repos' vectors, and a new vector for one the new
        // version coded (its old code must not answer for it).
        let newIDs = Set(claimed.map(\.repo.id))
        let older = repos.filter { !newIDs.contains($0.id) }
        let changed = claimed[0].repo.id
        let replacement = vectors[repos.firstIndex { $0.id == older[0].id }!].map { -$0 }
        var sql = ""
        for repo in older {
            sql += "INSERT OR REPLACE INTO repo_vector (repo, vector) SELECT seq, X'\(hexBlob(byID[repo.id]!))' FROM repo WHERE id = '\(repo.id.rawValue)';"
        }
        sql += "UPDATE repo_vector SET vector = X'\(hexBlob(replacement))' WHERE repo = (SELECT seq FROM repo WHERE id = '\(changed.rawValue)');"
        sql += "UPDATE repo SET embedding_dim = 24, embedding_model = 'm', embedded_revision = revision;"
        try await store.execute(sql)
        func check(_ store: SQLiteStore) async throws {
            for repo in older {
                #expect(try await store.nearest(to: byID[repo.id]!, limit: 1, filter: SearchFilter()).first?.repo.id == repo.id)
            }
            let hit = try await store.nearest(to: replacement, limit: 1, filter: SearchFilter()).first
            #expect(hit?.repo.id == changed && abs((hit?.score ?? 0) - 1) < 1e-5, "the changed vector is found by its new floats")
        }
        try await check(store)
        func uncoded(_ store: SQLiteStore) async throws -> Int? {
            try await DatabaseQueue(path: store.path).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM repo_vector_uncoded") }
        }
        #expect(try await uncoded(store) == 7)
        await store.shutdown()
        let restarted = SQLiteStore(directory: folder)
        try await restarted.prepare()
        #expect(try await uncoded(restarted) == 0)
        try await check(restarted)
        await restarted.shutdown()
    }

    /// Item 5 of issue 14: when the shutdown deadline cancels batches in flight, their claims
    /// are released at once, although GRDB refuses work in a cancelled task.
    @Test func claimsOfBatchesCancelledAtTheDeadlineAreReleased() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        try await store.upsert(SyntheticRepos.generate(count: 40))
        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.latencyMs = 60_000  // a batch that outlasts the deadline
        var configuration = PipelineConfiguration()
        configuration.batchSize = 10
        configuration.parallelWorkers = 2
        let pipeline = try await Pipeline.start(provider: MockProvider(configuration: providerConfiguration), providerName: "mock", store: store,
                                                configuration: configuration, instanceID: "deadline", logger: Logger(label: "test"))
        let backfill = Task { try await pipeline.backfill() }
        let leased = try await waitUntil { (try? await store.stats(modelIdentity: pipeline.modelIdentity).leased) == 20 }
        #expect(leased, "two batches of ten must be in flight")
        backfill.cancel()  // what the service group does when the graceful period is over
        _ = try? await backfill.value
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.leased == 0, "\(stats.leased) repos stay leased after the cancelled batches ended")
        #expect(stats.pending == 40)
        await store.shutdown()
    }

    /// Item 10 of issue 14: another writer holding the lock past the busy timeout is a
    /// retryable error; the backfill waits it out instead of stopping.
    @Test func aLockHeldPastTheBusyTimeoutIsWaitedOut() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(configuration: SQLiteStore.Configuration(path: "stars.sqlite", busyTimeoutSeconds: 0.2), directory: folder)
        try await store.prepare()
        try await store.upsert(SyntheticRepos.generate(count: 20))
        var configuration = PipelineConfiguration()
        configuration.batchSize = 5
        configuration.parallelWorkers = 1
        let pipeline = try await Pipeline.start(provider: MockProvider(), providerName: "mock", store: store, configuration: configuration,
                                                instanceID: "busy", logger: Logger(label: "test"))
        // Another process: a plain connection holding the write lock for a while.
        let other = try DatabaseQueue(path: folder.appendingPathComponent("stars.sqlite").path)
        let locked = DispatchSemaphore(value: 0), unlock = DispatchSemaphore(value: 0), unlocked = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? other.inTransaction(.immediate) { _ in
                locked.signal()
                unlock.wait()
                return .commit
            }
            unlocked.signal()
        }
        locked.wait()
        do {
            _ = try await store.claimPending(ClaimRequest(owner: "a", limit: 5, leaseDuration: .seconds(60), modelIdentity: "m"))
            Issue.record("a claim must not pass a held write lock")
        } catch {
            #expect(error.isRetryable, "\(error)")
            #expect("\(error)".contains("locked by another writer"))
        }
        let backfill = Task { try await pipeline.backfill() }
        try await Task.sleep(for: .seconds(1))
        unlock.signal()
        let summary = try await backfill.value
        #expect(summary.embedded == 20)
        unlocked.wait()
        try other.close()
        await store.shutdown()
    }

    @Test func aBackfillThroughThePipelineEmbedsEverything() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        let repos = SyntheticRepos.generate(count: 300)
        try await store.upsert(repos)
        var providerConfiguration = MockProvider.Configuration()
        providerConfiguration.dimensions = 32
        let provider = MockProvider(configuration: providerConfiguration)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 25
        configuration.parallelWorkers = 3
        let pipeline = try await Pipeline.start(provider: provider, providerName: "mock", store: store, configuration: configuration,
                                                instanceID: "sqlite-test", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == 300)
        let stats = try await store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats == StoreStats(total: 300, embedded: 300, pending: 0, failed: 0, leased: 0))
        // Search finds a repo by its own text.
        let probe = repos[17]
        let query = try await provider.embed([try TextBuilder().text(for: probe)], mode: .query)[0]
        let hits = try await store.nearest(to: query, limit: 3, filter: SearchFilter())
        #expect(hits.first?.repo.id == probe.id)
        await store.shutdown()
    }
}

@Suite struct SQLiteSearchTests {
    /// 41,000 vectors: enough for the search to split the table across reader connections (one
    /// range per 20,000 vectors, up to the cores). The hits must be the exact ranking, computed
    /// here in double precision, with and without a model filter; a vector split between ranges,
    /// or a range scanned twice or not at all, changes them.
    @Test func aSearchSplitAcrossReadersFindsTheExactNearest() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        let count = 41_000, dimensions = 8
        let repos = (0..<count).map { Repo(id: RepoID("repo:v\($0)"), fullName: "owner/v\($0)") }
        try await store.upsert(repos)
        var random = SeededRandom(seed: 23)
        var vectors: [[Float]] = []
        var sql = ""
        for index in 0..<count {
            let vector = (0..<dimensions).map { _ in Float(random.nextUnit() * 2 - 1) }
            vectors.append(vector)
            sql += "INSERT INTO repo_vector (repo, vector) VALUES ((SELECT seq FROM repo WHERE id = 'repo:v\(index)'), X'\(hexBlob(vector))');"
        }
        sql += "UPDATE repo SET embedding_dim = \(dimensions), embedding_model = 'm', embedded_revision = revision;"
        try await store.execute(sql)
        // The byte codes as the schema migration makes them for vectors stored before it.
        try await DatabaseQueue(path: store.path).write { try SQLiteMigrations.fillCodes($0) }

        func exact(_ query: [Float]) -> [RepoID] {
            func length(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
            let scored = vectors.enumerated().map { index, vector -> (Double, Int) in
                (zip(query, vector).reduce(0) { $0 + Double($1.0) * Double($1.1) } / (length(query) * length(vector)), index)
            }
            return scored.sorted { $0.0 > $1.0 }.prefix(10).map { RepoID("repo:v\($0.1)") }
        }
        // Random queries, and the stored vectors at the ends of the table and around the
        // places a split into two, three or four ranges falls (each must find itself first).
        var queries = (0..<5).map { _ in (0..<dimensions).map { _ in Float(random.nextUnit() * 2 - 1) } }
        for fraction in [0, 1, 2, 3, 4].map({ count * $0 / 4 }) + [count / 3, 2 * count / 3] {
            for index in [fraction - 1, fraction, fraction + 1] where vectors.indices.contains(index) { queries.append(vectors[index]) }
        }
        // Codes unpacked (every block stale), then packed in blocks, then with every third
        // block stale again and one code changed in it (the stale blocks' rows are read).
        for phase in ["unpacked", "packed", "partly stale"] {
            if phase == "packed" {
                #expect(try await store.pack() == (count - 1) / 256 + 1)
                #expect(try await store.unpackedBlocks() == 0)
            }
            if phase == "partly stale" {
                vectors[2 * 256 + 5] = vectors[2 * 256 + 5].map { -$0 }
                try await store.execute("""
                    UPDATE repo_vector SET vector = X'\(hexBlob(vectors[2 * 256 + 5]))' WHERE repo = (SELECT seq FROM repo WHERE id = 'repo:v\(2 * 256 + 5)');
                    UPDATE repo_vector_code SET code = code WHERE repo % 768 = 0;
                    """)
                _ = try await DatabaseQueue(path: store.path).write { try SQLiteMigrations.codeUncoded($0) }
                #expect(try await store.unpackedBlocks() == count / 768 + 1)
                queries.append(vectors[2 * 256 + 5])
            }
            for query in queries {
                let expected = exact(query)
                for scan in [true, false] {  // over the floats, and over the codes then the floats
                    let hits = try await store.nearest(to: query, limit: 10, filter: SearchFilter(), exact: scan)
                    #expect(hits.map(\.repo.id) == expected, "exact: \(scan), \(phase)")
                    let byModel = try await store.nearest(to: query, limit: 10, filter: SearchFilter(modelIdentity: "m"), exact: scan)
                    #expect(byModel.map(\.repo.id) == expected, "exact: \(scan), \(phase)")
                }
            }
        }
    }

    /// A block is stale as soon as one of its codes is written, changed or removed (a repo
    /// deleted with its vector included); packing rebuilds it from the code table.
    @Test func packedBlocksFollowEveryChangeToTheCodes() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        let repos = (0..<600).map { Repo(id: RepoID("repo:b\($0)"), fullName: "owner/b\($0)") }
        try await store.upsert(repos)
        var random = SeededRandom(seed: 5)
        let vectors = Dictionary(uniqueKeysWithValues: repos.map { repo in (repo.id, (0..<16).map { _ in Float(random.nextUnit() * 2 - 1) }) })
        _ = try await claimAndWrite(store, vectors, owner: "a", limit: 600)
        #expect(try await store.unpackedBlocks() == 3)  // seqs 1-600: blocks 0, 1 and 2
        // The queue is dry: the store's idle work packs them (a claim does not).
        #expect(try await store.claimPending(ClaimRequest(owner: "a", limit: 10, leaseDuration: .seconds(60), modelIdentity: "m")).isEmpty)
        #expect(try await store.unpackedBlocks() == 3)
        try await store.maintain(owner: "a", modelIdentity: "m")
        #expect(try await store.unpackedBlocks() == 0)
        #expect(try await codeRows(store) == 3)
        func first(_ vector: [Float]) async throws -> SearchHit? {
            try await store.nearest(to: vector, limit: 1, filter: SearchFilter()).first
        }
        #expect(try await first(vectors[RepoID("repo:b300")]!)?.repo.id == RepoID("repo:b300"))
        // A changed record is embedded again with another vector: its block is stale until the
        // queue runs dry, and the new vector is found meanwhile and after.
        var changed = repos[300]
        changed.description = "changed"
        try await store.upsert([changed])
        var moved = vectors
        moved[changed.id] = vectors[changed.id]!.map { -$0 }
        _ = try await claimAndWrite(store, moved, owner: "a", limit: 10)
        #expect(try await store.unpackedBlocks() == 1)
        #expect(try await first(moved[changed.id]!)?.repo.id == changed.id)
        #expect(try await first(moved[changed.id]!)?.score ?? 0 > 0.999)
        #expect(try await store.pack() == 1)
        #expect(try await first(moved[changed.id]!)?.repo.id == changed.id)
        #expect(try await first(moved[changed.id]!)?.score ?? 0 > 0.999)
        // A deleted repo's code goes with it (cascade), and so does it from the blocks.
        try await store.execute("DELETE FROM repo WHERE id = 'repo:b300'")
        #expect(try await store.unpackedBlocks() == 1)
        #expect(try await first(moved[changed.id]!)?.repo.id != changed.id)
        try await store.pack()
        #expect(try await first(moved[changed.id]!)?.repo.id != changed.id)
        #expect(try await first(vectors[RepoID("repo:b301")]!)?.repo.id == RepoID("repo:b301"))
        await store.shutdown()
    }

    /// 600 repos with random vectors of `dimensions`, written through the contract and packed.
    private func filledStore(_ folder: URL, seed: UInt64, dimensions: Int = 16) async throws -> (SQLiteStore, [RepoID: [Float]]) {
        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        let repos = (0..<600).map { Repo(id: RepoID("repo:c\($0)"), fullName: "owner/c\($0)") }
        try await store.upsert(repos)
        var random = SeededRandom(seed: seed)
        let vectors = Dictionary(uniqueKeysWithValues: repos.map { repo in (repo.id, (0..<dimensions).map { _ in Float(random.nextUnit() * 2 - 1) }) })
        _ = try await claimAndWrite(store, vectors, owner: "a", limit: 600)
        try await store.pack()
        return (store, vectors)
    }

    /// Removes the store's codes file and its write-ahead log, as a user deleting it would.
    private func removeCodesFile(_ store: SQLiteStore) throws {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: store.codesPath + suffix) {
            try FileManager.default.removeItem(atPath: store.codesPath + suffix)
        }
    }

    /// Every repo finds itself first, from its own vector.
    private func everyRepoFindsItself(_ store: SQLiteStore, _ vectors: [RepoID: [Float]], _ context: String) async throws {
        for (id, vector) in vectors.sorted(by: { $0.key.rawValue < $1.key.rawValue }).enumerated().filter({ $0.offset % 37 == 0 }).map(\.element) {
            let hit = try await store.nearest(to: vector, limit: 1, filter: SearchFilter()).first
            #expect(hit?.repo.id == id, "\(context)")
        }
    }

    /// The codes file holds rows that lie whole in its 64 KB pages (read in place), also at
    /// 384 dimensions, where a block of 256 codes takes two rows.
    @Test func packedRowsFitInOnePageOfTheCodesFile() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (store, vectors) = try await filledStore(folder, seed: 41, dimensions: 384)
        // Packing checkpoints the codes into the file itself: nothing left in its log.
        let logged = try FileManager.default.attributesOfItem(atPath: store.codesPath + "-wal")[.size] as? Int
        #expect(logged == 0)
        let (pageSize, largest, rows) = try await DatabaseQueue(path: store.codesPath).read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0,
             try Int.fetchOne(db, sql: "SELECT max(length(seqs) + length(codes)) FROM code_block") ?? 0,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM code_block") ?? 0)
        }
        #expect(pageSize == 65_536)
        #expect(largest > 50_000 && largest <= 60_000)
        #expect(rows == 5)  // 151 codes a row: blocks 0 (seqs 1-255) and 1 (256-511) in two rows each, 2 (512-600) in one
        try await everyRepoFindsItself(store, vectors, "384 dimensions, packed")
        await store.shutdown()
    }

    /// A codes file that is lost, or that belongs to another database (a backup restored without
    /// it, a copy), is never trusted: the search reads the code rows until `prepare` empties the
    /// file and packs it again for this database.
    @Test func aLostOrForeignCodesFileIsNeverTrusted() async throws {
        let folder = try temporaryFolder(), other = try temporaryFolder()
        defer {
            try? FileManager.default.removeItem(at: folder)
            try? FileManager.default.removeItem(at: other)
        }
        let (store, vectors) = try await filledStore(folder, seed: 7)
        let (foreign, _) = try await filledStore(other, seed: 8)
        #expect(try await codeRows(store) == 3)
        await store.shutdown()
        await foreign.shutdown()
        // The other database's codes file (with its write-ahead log), in the place of this one's.
        try removeCodesFile(store)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: foreign.codesPath + suffix) {
            try FileManager.default.copyItem(atPath: foreign.codesPath + suffix, toPath: store.codesPath + suffix)
        }
        let reopened = SQLiteStore(directory: folder)
        try await everyRepoFindsItself(reopened, vectors, "foreign codes file, before prepare")
        try await reopened.prepare()
        #expect(try await reopened.unpackedBlocks() == 0)
        try await everyRepoFindsItself(reopened, vectors, "foreign codes file, after prepare")
        await reopened.shutdown()
        // No codes file at all.
        try removeCodesFile(store)
        let again = SQLiteStore(directory: folder)
        try await everyRepoFindsItself(again, vectors, "new codes file, before prepare")
        try await again.prepare()
        #expect(try await codeRows(again) == 3)
        try await everyRepoFindsItself(again, vectors, "new codes file, after prepare")
        await again.shutdown()
    }

    /// A file of schema version 5 (codes packed in the database itself) moves its packing to the
    /// codes file: the version-5 rows are emptied and their blocks listed stale, so a version-5
    /// process still running reads the code rows, and the search finds every repo.
    @Test func aVersionFiveFileMovesItsPackingToTheCodesFile() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (store, vectors) = try await filledStore(folder, seed: 9)
        await store.shutdown()
        // What version 5 left: its packed rows, no stale blocks, no version 6.
        try await DatabaseQueue(path: store.path).write { db in
            try db.execute(sql: """
                DROP TRIGGER repo_code_version_insert; DROP TRIGGER repo_code_version_update; DROP TRIGGER repo_code_version_delete;
                DROP TABLE repo_code_version; DROP TABLE repo_code_change; DROP TABLE embed_star_code_file;
                DELETE FROM repo_code_stale;
                INSERT INTO repo_code_block (block, length, seqs, codes) VALUES (0, 20, X'00', X'00'), (1, 20, X'00', X'00'), (2, 20, X'00', X'00');
                DELETE FROM embed_star_migration WHERE version = 6;
                """)
        }
        try removeCodesFile(store)
        let migrated = SQLiteStore(directory: folder)
        try await migrated.prepare()
        #expect(try await rowCount(migrated, "repo_code_block") == 0)
        #expect(try await rowCount(migrated, "repo_code_stale") == 3)
        #expect(try await migrated.unpackedBlocks() == 0)
        #expect(try await codeRows(migrated) == 3)
        try await everyRepoFindsItself(migrated, vectors, "migrated from version 5")
        await migrated.shutdown()
    }
}
