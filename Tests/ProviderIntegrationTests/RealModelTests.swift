import EmbedStarApp
import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import EmbedStarOllama
import EmbedStarMockStore
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarTogether
import Foundation
import Logging
import Testing

/// The three providers against the real multilingual-e5-small model.
@Suite(.enabled(if: ModelServer.available, "needs EMBED_STAR_MODEL_URL (scripts/test starts the model)"))
struct RealModelTests {
    static let providers = ["openai", "together", "ollama"]

    @Test(arguments: providers)
    func vectorsMatchTheModelsOwn(_ name: String) async throws {
        let server = try ModelServer()
        let provider = try server.provider(name)
        let texts = ["toml-rs/toml\nA TOML parser for Rust", "Un analizador de JSON muy rápido", "日本語のテキスト処理", "kubernetes operator for postgres"]
        let vectors = try await provider.embed(texts, mode: .document)
        let own = try await server.direct(texts)
        #expect(vectors.count == texts.count)
        for (index, vector) in vectors.enumerated() {
            #expect(vector.count == 384)
            #expect(cosine(vector, own[index]) > 0.99, "\(name) text \(index)")
        }
    }

    @Test(arguments: providers)
    func backfillOf500ReposPutsTheRightVectorOnEachRecord(_ name: String) async throws {
        let server = try ModelServer()
        let repos = SyntheticRepos.generate(count: 500, seed: 11)
        let store = MockStore(repos: repos)
        var configuration = PipelineConfiguration()
        configuration.batchSize = 64
        configuration.parallelWorkers = 2
        let pipeline = try await Pipeline.start(provider: try server.provider(name), providerName: name, store: store,
                                                configuration: configuration, instanceID: "t", logger: Logger(label: "test"))
        let summary = try await pipeline.backfill()
        #expect(summary.embedded + summary.unchanged == 500)
        #expect(try await store.stats(modelIdentity: pipeline.modelIdentity).embedded == 500)
        let builder = try TextBuilder(maxTokens: pipeline.model.maxInputTokens)
        let sample = stride(from: 0, to: 500, by: 50).map { repos[$0] }
        let own = try await server.direct(sample.map { builder.text(for: $0) })
        for (repo, expected) in zip(sample, own) {
            let vector = try #require(await store.entry(repo.id)?.embedding)
            #expect(cosine(vector, expected) > 0.99, "\(name) \(repo.id)")
        }
    }

    @Test func aDescriptionFindsItsRepoFirst() async throws {
        let server = try ModelServer()
        let descriptions = [
            "A small TOML parser written in Rust", "Kubernetes operator that runs PostgreSQL clusters",
            "2D game engine with a physics simulation", "Password manager that syncs through your own server",
            "Command-line tool to find files quickly by fuzzy matching", "Library for parsing and formatting dates in Python",
            "WebAssembly runtime for embedded devices", "Neural machine translation between English and German",
        ]
        let repos = descriptions.enumerated().map { index, text in
            Repo(id: RepoID("repo:d\(index)"), fullName: "owner\(index)/project\(index)", description: text)
        }
        let store = MockStore(repos: repos)
        let provider = try server.provider("openai")
        let pipeline = try await Pipeline.start(provider: provider, providerName: "openai", store: store,
                                                configuration: PipelineConfiguration(), instanceID: "t", logger: Logger(label: "test"))
        _ = try await pipeline.backfill()
        for repo in repos {
            let query = try await provider.embed([repo.description!], mode: .query)[0]
            let hits = try await store.nearest(to: query, limit: 3, filter: SearchFilter())
            #expect(hits.first?.repo.id == repo.id, "\(repo.description!)")
        }
    }

    @Test(arguments: providers)
    func healthSpendsNoEmbedding(_ name: String) async throws {
        let server = try ModelServer()
        let provider = try server.provider(name)
        #expect(await provider.health().status == .up)
        #expect(try await server.embedCalls() == 0)
    }

    @Test func ollamaLearnsTheModelFromShow() async throws {
        let server = try ModelServer()
        let info = try await server.provider("ollama").prepare()
        #expect(info.dimensions == 384)
        #expect(info.maxInputTokens == 512)
    }

    @Test func ollamaModelNotPulledSaysHowToPullIt() async throws {
        let server = try ModelServer()
        let missing = try OllamaProvider(
            configuration: ConfigDecoder().decode(OllamaProvider.Configuration.self,
                                                  from: ConfigNode.parse(yaml: "url: \(server.root)\nmodel: nomic-embed-text", source: "t"), path: "p"),
            transport: AsyncHTTPClientTransport(client: .shared))
        let atStart = await embeddingError { _ = try await missing.prepare() }
        #expect(atStart?.kind == .fatal)
        #expect(atStart?.message.contains("ollama pull nomic-embed-text") == true)
        let onEmbed = await embeddingError { _ = try await missing.embed(["x"], mode: .document) }
        #expect(onEmbed?.kind == .fatal)
        #expect(onEmbed?.message.contains("ollama pull nomic-embed-text") == true)
        #expect(await missing.health().status == .degraded)
    }

    @Test func ollamaFallsBackToTheLegacyEndpointOnOldServers() async throws {
        let server = try ModelServer()
        try await server.mode(["ollama_legacy": true])
        let provider = try server.provider("ollama")
        let texts = ["first text", "second text", "third"]
        let vectors = try await provider.embed(texts, mode: .document)
        let own = try await server.direct(texts)
        for (vector, expected) in zip(vectors, own) { #expect(cosine(vector, expected) > 0.99) }
        // One failed /api/embed, then one /api/embeddings per text; later calls go straight there.
        #expect(try await server.embedCalls() == 4)
        _ = try await provider.embed(["again"], mode: .document)
        #expect(try await server.embedCalls() == 5)
    }
}
