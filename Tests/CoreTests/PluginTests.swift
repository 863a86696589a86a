import EmbedStarApp
import EmbedStarConfig
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import Foundation
import Logging
import Synchronization
import Testing

/// A provider that exists only in this test target: a one-hot vector per text length bucket.
/// Registering it and naming it in YAML is all it takes; Core and the pipeline do not change.
final class LengthProvider: EmbeddingProvider {
    struct Configuration: PluginConfiguration {
        var buckets = 16
        enum CodingKeys: String, CodingKey, CaseIterable { case buckets }
    }

    let configuration: Configuration
    let model: ModelInfo
    let calls = Mutex(0)

    init(_ configuration: Configuration) {
        self.configuration = configuration
        model = ModelInfo(name: "length", dimensions: configuration.buckets, maxBatchSize: 8)
    }

    func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        calls.withLock { $0 += 1 }
        return texts.map { text in
            var vector = [Float](repeating: 0.01, count: configuration.buckets)
            vector[text.count % configuration.buckets] = 1
            return vector
        }
    }

    func health() async -> ComponentHealth { .up }

    static let factory = ProviderFactory(name: "test-length", summary: "test only", configuration: Configuration.self) { configuration, _ in
        LengthProvider(configuration)
    }
}

@Suite struct PluginTests {
    var registry: PluginRegistry {
        var registry = PluginRegistry()
        try! registry.register(LengthProvider.factory)
        try! registry.register(StoreFactory.mock)
        return registry
    }

    func seededFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SyntheticRepos.json(SyntheticRepos.generate(count: 30)).write(to: folder.appendingPathComponent("repos.json"))
        return folder
    }

    /// A second plugin of one name is refused, not silently put in place of the first.
    @Test func aSecondPluginOfOneNameIsRefused() throws {
        var registry = PluginRegistry()
        try registry.register(ProviderFactory.mock)
        try registry.register(StoreFactory.mock)
        #expect(throws: PluginRegistryError.self) { try registry.register(ProviderFactory.mock) }
        #expect(throws: PluginRegistryError.self) { try registry.register(StoreFactory.mock) }
        #expect(registry.providers.count == 1 && registry.stores.count == 1)
    }

    @Test func aProviderFromATestTargetIsSelectedByNameInYAML() async throws {
        let folder = try seededFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let yaml = """
            provider: test-length
            store: mock
            providers:
              test-length:
                buckets: 12
            stores:
              mock:
                seed_file: repos.json
            """
        let config = try ConfigLoader.load(yaml: yaml, source: "plugins.yaml", directory: folder)
        let runtime = try await Runtime.build(config, registry: registry, logger: Logger(label: "test"))
        let provider = try #require(runtime.provider.base as? LengthProvider)
        #expect(provider.configuration.buckets == 12)
        let pipeline = try await runtime.startPipeline()
        #expect(pipeline.modelIdentity == "test-length/length@12")
        let summary = try await pipeline.backfill()
        #expect(summary.embedded == 30)
        #expect(provider.calls.withLock { $0 } >= 4)  // max batch size 8
        let stats = try await runtime.store.stats(modelIdentity: pipeline.modelIdentity)
        #expect(stats.embedded == 30)
    }

    @Test func theTestProvidersKeysAreCheckedToo() throws {
        let config = try ConfigLoader.load(yaml: "provider: test-length\nstore: mock\nproviders:\n  test-length:\n    bucket: 3\n", source: "p.yaml")
        #expect(throws: ConfigError.self) { try registry.validate(config) }
        do {
            try registry.validate(config)
        } catch {
            #expect("\(error)" == "p.yaml:5:5: providers.test-length: unknown key 'bucket'; did you mean 'buckets'?")
        }
    }
}

@Suite struct HealthLimitTests {
    @Test func aCheckThatHangsIsDownAfterTheLimitAndAnAnswerInTimeIsKept() async {
        let hung = await ComponentHealth.within(.milliseconds(50)) {
            try? await Task.sleep(for: .seconds(3600))
            return .up
        }
        #expect(hung.status == .down)
        #expect(hung.detail?.contains("no answer within") == true)
        let quick = await ComponentHealth.within(.seconds(60)) { ComponentHealth(status: .degraded, detail: "slow") }
        #expect(quick == ComponentHealth(status: .degraded, detail: "slow"))
    }
}

/// Unknown keys come from the keys a configuration declares, not from what decoding read.
@Suite struct DeclaredKeyTests {
    /// Checks its first key's value before it reads the second: decoding stops early.
    struct Strict: PluginConfiguration {
        var level = 1
        var name = "x"
        enum CodingKeys: String, CodingKey, CaseIterable { case level, name }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.fill(&level, .level)
            guard level < 10 else { throw ConfigError.invalid("level", "must be below 10", in: decoder) }
            try c.fill(&name, .name)
        }
    }

    var registry: PluginRegistry {
        var registry = PluginRegistry()
        try! registry.register(StoreFactory.mock)
        try! registry.register(ProviderFactory(name: "strict", summary: "test", configuration: Strict.self) { _, _ in LengthProvider(.init()) })
        try! registry.register(ProviderFactory.mock)
        return registry
    }

    @Test func aKeyAfterABadValueIsNotUnknownAndATypoIsFoundWhateverTheValues() throws {
        // Not selected: its values are not checked, and `name` is a key it declares.
        let fine = try ConfigLoader.load(yaml: "provider: mock\nstore: mock\nproviders:\n  strict:\n    level: 99\n    name: y\n", source: "p.yaml")
        try registry.validate(fine)
        let typo = try ConfigLoader.load(yaml: "provider: mock\nstore: mock\nproviders:\n  strict:\n    level: 99\n    nmae: y\n", source: "p.yaml")
        #expect(throws: ConfigError.self) { try registry.validate(typo) }
        do {
            try registry.validate(typo)
        } catch {
            #expect("\(error)" == "p.yaml:6:5: providers.strict: unknown key 'nmae'; did you mean 'name'?")
        }
        // Selected: the value is checked, and the message names it.
        let selected = try ConfigLoader.load(yaml: "provider: strict\nstore: mock\nproviders:\n  strict:\n    level: 99\n", source: "p.yaml")
        #expect(throws: ConfigError.self) { try registry.validate(selected) }
        do {
            try registry.validate(selected)
        } catch {
            #expect("\(error)".contains("providers.strict.level: must be below 10"), "\(error)")
        }
    }
}
