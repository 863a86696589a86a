import ArgumentParser
import EmbedStarApp
import EmbedStarBuiltInPlugins
import EmbedStarConfig
import EmbedStarCore
import Foundation
import Logging

/// The options every command that reads the configuration shares, with the seed's flag names.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file (default: $EMBED_STAR_CONFIG or ./plugins.yaml).")
    var config: String?

    @Option(name: .customLong("env"), help: "A named environment from the file to overlay (default: $EMBED_STAR_ENV).")
    var environment: String?

    @Option(name: .long, help: "Repos per batch (pipeline.batch_size, BATCH_SIZE).")
    var batchSize: Int?

    @Option(name: .long, help: "Batches in flight at once (pipeline.parallel_workers, PARALLEL_WORKERS).")
    var parallelWorkers: Int?

    @Option(name: .long, help: "Pause between batches of one worker (pipeline.batch_delay_ms, BATCH_DELAY_MS).")
    var batchDelayMs: Int?

    @Option(name: .long, help: "Database connections (the selected store's pool_size; not every store has one).")
    var poolSize: Int?

    @Option(name: .long, help: "Monitoring server port (monitoring.port, MONITORING_PORT).")
    var monitoringPort: Int?

    @Option(name: .long, help: "Where the database is (the selected store's url; the SQLite store's path).")
    var dbURL: String?

    @Option(name: .long, help: "Embedding provider plugin (provider, EMBEDDING_PROVIDER).")
    var embeddingProvider: String?

    @Option(name: .long, help: "Embedding model (the selected provider's model; the local provider's model_path).")
    var embeddingModel: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Set any key: --set providers.mock.dimensions=768 (repeatable).", valueName: "path=value"))
    var assignments: [String] = []

    var path: String {
        config ?? ProcessInfo.processInfo.environment["EMBED_STAR_CONFIG"] ?? "plugins.yaml"
    }

    func overrides() throws(ConfigError) -> [ConfigOverride] {
        var overrides: [ConfigOverride] = []
        func add(_ target: ConfigOverride.Target, _ value: (some CustomStringConvertible)?, _ flag: String) {
            if let value { overrides.append(ConfigOverride(target, value: value.description, flag: flag)) }
        }
        add(.path(["provider"]), embeddingProvider, "--embedding-provider")
        add(.path(["pipeline", "batch_size"]), batchSize, "--batch-size")
        add(.path(["pipeline", "parallel_workers"]), parallelWorkers, "--parallel-workers")
        add(.path(["pipeline", "batch_delay_ms"]), batchDelayMs, "--batch-delay-ms")
        add(.path(["monitoring", "port"]), monitoringPort, "--monitoring-port")
        add(.providerFlag(.model), embeddingModel, "--embedding-model")
        add(.storeFlag(.database), dbURL, "--db-url")
        add(.storeFlag(.poolSize), poolSize, "--pool-size")
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals > assignment.startIndex else {
                throw ConfigError(location: ConfigLocation(source: "command line --set"), path: nil, message: "expected path=value, got '\(assignment)'")
            }
            let path = assignment[..<equals].split(separator: ".").map(String.init)
            add(.path(path), String(assignment[assignment.index(after: equals)...]), "--set \(assignment[..<equals])")
        }
        return overrides
    }

    func load() throws(ConfigError) -> LoadedConfiguration {
        try ConfigLoader.load(path: path, environmentName: environment, overrides: try overrides(), registry: BuiltInPlugins.registry)
    }

    /// Loads the configuration, builds the selected plugins, runs `body` with them and shuts the
    /// store down afterwards, whether `body` returns or throws (``Runtime/with(_:registry:logger:_:)``).
    /// Configuration errors exit 2.
    func withRuntime<T>(logger: Logger, _ body: (Runtime) async throws -> T) async throws -> T {
        let configuration: LoadedConfiguration
        do {
            configuration = try load()
        } catch {
            throw CLIError.configuration(error)
        }
        do {
            return try await Runtime.with(configuration, registry: BuiltInPlugins.registry, logger: logger, body)
        } catch let error as ConfigError {
            throw CLIError.configuration(error)
        }
    }
}
