import EmbedStarConfig
import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import Foundation
import Testing

private let base = """
    provider: ${EMBEDDING_PROVIDER:-mock}
    store: mock
    pipeline:
      batch_size: ${BATCH_SIZE:-50}
      parallel_workers: ${PARALLEL_WORKERS-2}
    providers:
      mock:
        dimensions: 64
        model: ${EMBEDDING_MODEL:-mock-embed}
      openai:
        api_key: ${OPENAI_API_KEY}
    stores:
      mock:
        seed_file: ${SEED:-repos.json}
    environments:
      small:
        pipeline:
          batch_size: 5
        providers:
          mock:
            dimensions: 8
    """

private func load(_ yaml: String = base, env: String? = nil, overrides: [ConfigOverride] = [], registry: PluginRegistry? = nil,
                  vars: [String: String] = [:]) throws -> LoadedConfiguration {
    try ConfigLoader.load(yaml: yaml, source: "plugins.yaml", environmentName: env, overrides: overrides, registry: registry, environment: vars)
}

/// A store whose database key is not called `url`, declared for the `--db-url` flag.
private struct FileStoreConfiguration: PluginConfiguration {
    var file = "x.db"
    enum CodingKeys: String, CodingKey, CaseIterable { case file }
    static var flagKeys: [PluginFlag: String] { [.database: "file"] }
}

private var registry: PluginRegistry {
    var registry = PluginRegistry()
    try! registry.register(ProviderFactory.mock)
    try! registry.register(StoreFactory.mock)
    return registry
}

private func configError(_ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        return nil
    } catch let error as ConfigError {
        return error
    } catch {
        Issue.record("expected a ConfigError, got \(error)")
        return nil
    }
}

@Suite struct ConfigTests {
    @Test func defaultsApplyWhenVariablesAreUnset() throws {
        let config = try load()
        #expect(config.settings.provider == "mock")
        #expect(config.settings.pipeline.batchSize == 50)
        #expect(config.settings.pipeline.parallelWorkers == 2)
        #expect(config.storeSection["seed_file"]?.scalarText == "repos.json")
    }

    @Test func variablesReplaceDefaults() throws {
        let config = try load(vars: ["BATCH_SIZE": "7", "EMBEDDING_MODEL": "m2", "SEED": "other.json"])
        #expect(config.settings.pipeline.batchSize == 7)
        #expect(config.providerSection["model"]?.scalarText == "m2")
        #expect(config.storeSection["seed_file"]?.scalarText == "other.json")
    }

    @Test func colonDashTreatsEmptyAsUnsetButDashDoesNot() throws {
        #expect(try load(vars: ["BATCH_SIZE": ""]).settings.pipeline.batchSize == 50)
        // With '-', an empty value is kept: an empty plain scalar is null, so the built-in default applies.
        #expect(try load(vars: ["PARALLEL_WORKERS": ""]).settings.pipeline.parallelWorkers == PipelineConfiguration().parallelWorkers)
    }

    @Test func dollarDollarIsALiteralDollar() throws {
        let config = try load(base.replacingOccurrences(of: "${SEED:-repos.json}", with: "a$$b-${SEED:-x}.json"))
        #expect(config.storeSection["seed_file"]?.scalarText == "a$b-x.json")
    }

    @Test func interpolatedValueOfWrongTypeNamesKeyAndLine() {
        let error = configError { _ = try load(vars: ["BATCH_SIZE": "lots"]) }
        #expect(error?.path == "pipeline.batch_size")
        #expect(error?.location?.line == 4)
        #expect(error?.message.contains("expected an integer, got 'lots'") == true)
    }

    @Test func environmentOverlaysTheBase() throws {
        let config = try load(env: "small")
        #expect(config.environmentName == "small")
        #expect(config.settings.pipeline.batchSize == 5)
        #expect(config.settings.pipeline.parallelWorkers == 2)  // untouched keys stay
        #expect(config.providerSection["dimensions"]?.scalarText == "8")
        #expect(config.providerSection["model"]?.scalarText == "mock-embed")
    }

    @Test func unknownEnvironmentListsTheDefinedOnes() {
        let error = configError { _ = try load(env: "smal") }
        #expect(error?.message.contains("unknown environment 'smal'; did you mean 'small'?") == true)
        #expect(error?.message.contains("defined: small") == true)
    }

    @Test func commandLineOverridesWinOverFileAndEnvironment() throws {
        let config = try load(env: "small", overrides: [
            ConfigOverride(.path(["pipeline", "batch_size"]), value: "9", flag: "--batch-size"),
            ConfigOverride(.providerFlag(.model), value: "flag-model", flag: "--embedding-model"),
            ConfigOverride(.path(["stores", "mock", "seed_file"]), value: "flag.json", flag: "--set"),
        ], registry: registry, vars: ["BATCH_SIZE": "7"])
        #expect(config.settings.pipeline.batchSize == 9)
        #expect(config.providerSection["model"]?.scalarText == "flag-model")
        #expect(config.storeSection["seed_file"]?.scalarText == "flag.json")
    }

    @Test func pluginFlagsSetTheKeyThePluginDeclares() throws {
        var plugins = registry
        try plugins.register(StoreFactory(name: "file", summary: "test", configuration: FileStoreConfiguration.self) { _, _ in MockStore() })
        let yaml = base.replacingOccurrences(of: "store: mock", with: "store: file")
        let config = try load(yaml, overrides: [ConfigOverride(.storeFlag(.database), value: "/data/stars.db", flag: "--db-url")], registry: plugins)
        #expect(config.storeSection["file"]?.scalarText == "/data/stars.db")
        #expect(config.storeSection["url"] == nil)
        #expect(throws: Never.self) { try plugins.validate(config) }
        // The mock store declares no database key and no pool: the flag names the store, not a key.
        let error = configError {
            _ = try load(overrides: [ConfigOverride(.storeFlag(.poolSize), value: "4", flag: "--pool-size")], registry: plugins)
        }
        #expect(error?.location?.description == "command line --pool-size")
        #expect(error?.message.contains("the mock store has no setting --pool-size sets") == true)
        // A flag's conventional key is the default: the mock provider's `model`.
        #expect(ProviderFactory.mock.flagKeys[.model] == "model")
        #expect(StoreFactory.mock.flagKeys[.database] == nil)
    }

    @Test func overrideWithBadValueNamesTheFlag() {
        let error = configError {
            _ = try load(overrides: [ConfigOverride(.path(["pipeline", "batch_size"]), value: "x", flag: "--batch-size")])
        }
        #expect(error?.location?.description == "command line --batch-size")
    }

    @Test func providerFlagChangesWhichSectionModelGoesTo() throws {
        let config = try load(overrides: [
            ConfigOverride(.path(["provider"]), value: "openai", flag: "--embedding-provider"),
            ConfigOverride(.providerFlag(.model), value: "text-embedding-3-large", flag: "--embedding-model"),
        ])
        #expect(config.settings.provider == "openai")
        #expect(config.providerSection["model"]?.scalarText == "text-embedding-3-large")
    }

    @Test func unknownPluginNameListsRegisteredOnes() throws {
        let config = try load(vars: ["EMBEDDING_PROVIDER": "olama"])
        let error = configError { try registry.validate(config) }
        #expect(error?.path == "provider")
        #expect(error?.location?.line == 1)
        #expect(error?.message.contains("unknown provider 'olama'") == true)
        #expect(error?.message.contains("registered providers: mock") == true)
    }

    @Test func unknownKeyInPluginSectionSuggestsTheRightOne() throws {
        let config = try load(base.replacingOccurrences(of: "    dimensions: 64", with: "    dimensons: 64"))
        let error = configError { try registry.validate(config) }
        #expect(error?.description == "plugins.yaml:8:5: providers.mock: unknown key 'dimensons'; did you mean 'dimensions'?")
    }

    @Test func unknownKeyInCoreSectionIsAnError() {
        let error = configError { _ = try load(base.replacingOccurrences(of: "  batch_size:", with: "  batchsize:")) }
        #expect(error?.path == "pipeline")
        #expect(error?.message.contains("unknown key 'batchsize'; did you mean 'batch_size'?") == true)
    }

    @Test func unknownTopLevelKeyIsAnError() {
        let error = configError { _ = try load(base + "\nprovidrs: {}\n") }
        #expect(error?.message.contains("did you mean 'providers'?") == true)
    }

    @Test func missingVariableIsAnErrorOnlyWhereUsed() throws {
        // openai is configured with ${OPENAI_API_KEY} but not selected: fine.
        let config = try load()
        try registry.validate(config)
        // Selected, the missing key names the key and the variable.
        let selected = try load(base.replacingOccurrences(of: "seed_file: ${SEED:-repos.json}", with: "seed_file: ${SEED_FILE}"))
        let error = configError { try registry.validate(selected) }
        #expect(error?.path == "stores.mock.seed_file")
        #expect(error?.location?.line == 14)
        #expect(error?.message.contains("SEED_FILE") == true)
    }

    @Test func missingVariableInsideLongerTextIsAnErrorAtOnce() {
        let error = configError { _ = try load(base.replacingOccurrences(of: "${SEED:-repos.json}", with: "data/${SEED}.json")) }
        #expect(error?.message.contains("SEED is not set") == true)
    }

    @Test func malformedYAMLGivesTheLine() {
        let error = configError { _ = try load("provider: mock\nstore: mock\npipeline:\n  batch_size: [1, 2\n  other: 3\n") }
        #expect(error?.location?.source == "plugins.yaml")
        #expect((error?.location?.line ?? 0) >= 4)
        #expect(error?.message.hasPrefix("invalid YAML") == true)
    }

    @Test func tabsAndBadIndentationAreSyntaxErrors() {
        let error = configError { _ = try load("provider: mock\n\tstore: mock\n") }
        #expect(error?.location?.line == 2)
    }

    @Test func invalidPipelineValueIsRejectedWithLocation() {
        let error = configError { _ = try load(vars: ["BATCH_SIZE": "0"]) }
        #expect(error?.path == "pipeline.batch_size")
        #expect(error?.location?.line == 4)
    }

    @Test func pluginRangeCheckNamesTheKey() throws {
        let config = try load(base.replacingOccurrences(of: "dimensions: 64", with: "dimensions: 0"))
        let error = configError { try registry.validate(config) }
        #expect(error?.path == "providers.mock.dimensions")
        #expect(error?.location?.line == 8)
    }

    @Test func unknownTemplateFieldIsRejected() {
        let error = configError { _ = try load(base + "\ntext:\n  template: \"{full_name} {descripton}\"\n") }
        #expect(error?.message.contains("did you mean '{description}'?") == true)
    }

    @Test func dotEnvBesideTheFileIsReadAndProcessEnvironmentWins() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try base.write(to: folder.appendingPathComponent("plugins.yaml"), atomically: true, encoding: .utf8)
        try "# comment\nexport BATCH_SIZE=11\nEMBEDDING_MODEL=\"from-dotenv\"\n".write(to: folder.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: folder.appendingPathComponent("plugins.yaml").path, environment: ["EMBEDDING_MODEL": "from-process"])
        #expect(config.settings.pipeline.batchSize == 11)
        #expect(config.providerSection["model"]?.scalarText == "from-process")
        let missing = configError { _ = try ConfigLoader.load(path: folder.appendingPathComponent("nope.yaml").path) }
        #expect(missing?.message.contains("no such file") == true)
    }

    @Test func secretsAreReadFromTheFileThatNameFileNames() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let secret = folder.appendingPathComponent("openai_api_key")
        try "sk-from-file\n".write(to: secret, atomically: true, encoding: .utf8)
        let yaml = base.replacingOccurrences(of: "provider: ${EMBEDDING_PROVIDER:-mock}", with: "provider: openai")
        // Unset OPENAI_API_KEY: the file's content, its trailing newline trimmed.
        var config = try load(yaml, vars: ["OPENAI_API_KEY_FILE": secret.path])
        #expect(config.providerSection["api_key"]?.scalarText == "sk-from-file")
        #expect(!ConfigRendering.render(config).contains("sk-from-file"))
        // A CRLF file loses its whole line ending; the variable itself wins over the file.
        try "sk-crlf\r\n".write(to: secret, atomically: true, encoding: .utf8)
        config = try load(yaml, vars: ["OPENAI_API_KEY_FILE": secret.path])
        #expect(config.providerSection["api_key"]?.scalarText == "sk-crlf")
        config = try load(yaml, vars: ["OPENAI_API_KEY": "sk-env", "OPENAI_API_KEY_FILE": secret.path])
        #expect(config.providerSection["api_key"]?.scalarText == "sk-env")
        // Any ${VAR} works the same, defaults included.
        try "7\n".write(to: secret, atomically: true, encoding: .utf8)
        config = try load(vars: ["BATCH_SIZE_FILE": secret.path])
        #expect(config.settings.pipeline.batchSize == 7)
        // A file that cannot be read is named, with the reason; no content is shown.
        let error = configError { _ = try load(yaml, vars: ["OPENAI_API_KEY_FILE": folder.appendingPathComponent("missing").path]) }
        #expect(error?.message.contains("OPENAI_API_KEY_FILE names \(folder.appendingPathComponent("missing").path)") == true, "\(String(describing: error))")
        #expect(error?.path == "providers.openai.api_key")
    }

    @Test func renderingHidesSecrets() throws {
        let yaml = base.replacingOccurrences(of: "provider: ${EMBEDDING_PROVIDER:-mock}", with: "provider: mock")
            + "\n    password: hunter2\n"
        var config = try load(yaml.replacingOccurrences(of: "seed_file: ${SEED:-repos.json}", with: "seed_file: x.json\n    url: ws://root:topsecret@db:8000\n    api_key: sk-123"))
        config.tree.set(["stores", "mock", "token"], to: ConfigNode(.scalar("tok-456", quoted: false)))
        config.settings.stores["mock"] = RawConfig(node: config.tree["stores"]!["mock"]!)
        let text = ConfigRendering.render(config)
        #expect(!text.contains("topsecret"))
        #expect(!text.contains("sk-123"))
        #expect(!text.contains("tok-456"))
        #expect(text.contains("ws://root:<redacted>@db:8000"))
        #expect(!text.contains("openai"))  // only the selected plugins are shown
    }
}

@Suite struct ConfigSchemaTests {
    struct Sample: PluginConfiguration {
        enum Mode: String, Decodable, Sendable { case fast, slow }
        var url: String
        var apiKey: String?
        var batchSize = 16
        var ratio = 0.5
        var mode = Mode.fast
        var tags: [String] = ["a", "b"]
        var dimensions: Int?

        enum CodingKeys: String, CodingKey, CaseIterable { case url, apiKey = "api_key", batchSize = "batch_size", ratio, mode, tags, dimensions }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.decode(String.self, forKey: .url)
            apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
            ratio = try c.decodeIfPresent(Double.self, forKey: .ratio) ?? ratio
            mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? mode
            tags = try c.decodeIfPresent([String].self, forKey: .tags) ?? tags
            dimensions = try c.decodeIfPresent(Int.self, forKey: .dimensions)
            guard apiKey != nil || !url.contains("hosted") else { throw ConfigError.invalid("api_key", "needed", in: decoder) }
        }
    }

    @Test func keysTypesDefaultsAndSecretsComeFromTheType() {
        let keys = ConfigSchema.describe(Sample.self)
        #expect(keys.map(\.name) == ["url", "api_key", "batch_size", "ratio", "mode", "tags", "dimensions"])
        let byName = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })
        #expect(byName["url"]?.required == true && byName["url"]?.type == "string" && byName["url"]?.defaultValue == nil)
        #expect(byName["api_key"]?.secret == true && byName["api_key"]?.required == false)
        #expect(byName["batch_size"]?.type == "integer" && byName["batch_size"]?.defaultValue == "16")
        #expect(byName["ratio"]?.type == "number" && byName["ratio"]?.defaultValue == "0.5")
        #expect(byName["mode"]?.defaultValue == "fast")
        #expect(byName["tags"]?.type == "list" && byName["tags"]?.defaultValue == "[a, b]")
        #expect(byName["dimensions"]?.type == "integer" && byName["dimensions"]?.defaultValue == "none")
        #expect(keys.filter(\.secret).map(\.name) == ["api_key"])
    }
}
