import ArgumentParser
import EmbedStarApp
import EmbedStarBuiltInPlugins
import EmbedStarConfig
import EmbedStarCore
import Foundation
import Logging

/// `embed-star-bench`: what the bench/ scripts time inside the process. Kept out of the
/// production command line because it knows backends (the SQLite store's exact scan, the
/// SurrealDB client's CBOR), which the `embed-star` commands reach only through the registry.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed-star-bench",
        abstract: "In-process measurements for the bench/ scripts (JSON or text on standard output).",
        subcommands: [BenchClaimsCommand.self, BenchSearchCommand.self, BenchCBORCommand.self, BenchRetrievalCommand.self]
    )
}

/// The configuration to measure: a file and an optional environment, as `embed-star` reads them.
struct BenchOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file (default: $EMBED_STAR_CONFIG or ./plugins.yaml).")
    var config = ProcessInfo.processInfo.environment["EMBED_STAR_CONFIG"] ?? "plugins.yaml"

    @Option(name: .customLong("env"), help: "A named environment from the file to overlay.")
    var environment: String?

    /// Builds the configured plugins with the executables' registry, runs `body`, shuts the
    /// store down. Logs go to standard error at LOG_LEVEL (default: warning).
    func withRuntime<T>(_ body: (Runtime) async throws -> T) async throws -> T {
        var logger = Logger(label: "embed-star-bench")
        logger.logLevel = LogLevelSpec.fromEnvironment(ProcessInfo.processInfo.environment, default: .warning)
        let loaded = try ConfigLoader.load(path: config, environmentName: environment, registry: BuiltInPlugins.registry)
        return try await Runtime.with(loaded, registry: BuiltInPlugins.registry, logger: logger, body)
    }
}

/// One JSON object of figures on standard output.
func printFigures(_ figures: [String: Double]) throws {
    let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
