import EmbedStarApp
import EmbedStarCore
import EmbedStarLocal
import EmbedStarSQLiteStore
import Foundation
import Logging
import Testing

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Does search find repos by meaning? The bundled dataset (`examples/stars.json`: 2,000 synthetic
/// repos and 50 hand-written ones) embedded by the real model into SQLite, then 50 queries that
/// paraphrase the hand-written repos' descriptions (`testing/retrieval-queries.json`).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_MODEL_URL"] != nil, "needs the model installed (scripts/test)"))
struct RetrievalTests {
    struct Query: Decodable {
        var query: String
        var expect: String
    }

    @Test func paraphrasesFindTheirRepoInTheTopFive() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try Data(contentsOf: packageRoot.appendingPathComponent("examples/stars.json"))
        let repos = try GitHubStarred.parse(data, source: "stars.json")
        #expect(repos.rejected.isEmpty)
        let queries = try JSONDecoder().decode([Query].self, from: Data(contentsOf: packageRoot.appendingPathComponent("testing/retrieval-queries.json")))
        #expect(queries.count == 50)

        let store = SQLiteStore(directory: folder)
        try await store.prepare()
        try await store.upsert(repos.repos)
        var providerConfiguration = LocalProvider.Configuration()
        // Both cores: scripts/test runs this suite in a stage of its own (nothing beside it).
        providerConfiguration.threads = ProcessInfo.processInfo.activeProcessorCount
        let provider = try LocalProvider(configuration: providerConfiguration, searchFrom: [packageRoot])
        var configuration = PipelineConfiguration()
        configuration.batchSize = 64
        configuration.parallelWorkers = 2
        let pipeline = try await Pipeline.start(provider: provider, providerName: "local", store: store, configuration: configuration,
                                                instanceID: "retrieval", logger: Logger(label: "retrieval"))
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == repos.repos.count)

        // The engine always adds one of e5's prefixes ("query: " or "passage: "); the comparison
        // without the distinction embeds the query as a passage, like the documents.
        var found: [EmbeddingMode: Int] = [.query: 0, .document: 0]
        var misses: [String] = []
        for query in queries {
            for mode in [EmbeddingMode.query, .document] {
                let vector = try await provider.embed([query.query], mode: mode)[0]
                let hits = try await store.nearest(to: vector, limit: 5, filter: SearchFilter())
                if hits.contains(where: { $0.repo.fullName == query.expect }) {
                    found[mode, default: 0] += 1
                } else if mode == .query {
                    misses.append("\(query.query) -> \(query.expect); got \(hits.prefix(3).map(\.repo.fullName))")
                }
            }
        }
        let withPrefixes = found[.query] ?? 0, without = found[.document] ?? 0
        print("retrieval on \(repos.repos.count) repos, top 5: with query/passage prefixes \(withPrefixes)/\(queries.count), query embedded as a passage \(without)/\(queries.count)")
        for miss in misses { print("  missed: \(miss)") }
        #expect(withPrefixes * 10 >= queries.count * 9, "fewer than 90% of the paraphrases found their repo")
        await store.shutdown()
    }
}
