/// Whether a text is a document to be found or a query looking for one. Many models embed the
/// two differently (a task prefix, or an `input_type`); providers that do not care ignore it.
public enum EmbeddingMode: String, Sendable, CaseIterable {
    case document
    case query
}

/// What a provider knows about the model it serves.
public struct ModelInfo: Hashable, Sendable {
    /// The model name as the provider's API knows it.
    public var name: String
    /// The vector length, when known before the first answer. The pipeline learns it from the
    /// first vector otherwise and holds every later vector to it.
    public var dimensions: Int?
    /// The most inputs one `embed` call may carry.
    public var maxBatchSize: Int
    /// The most tokens one input may have; longer texts are truncated before they are sent.
    public var maxInputTokens: Int?
    /// The most tokens (estimated) one `embed` call may carry in total.
    public var maxBatchTokens: Int?
    /// The task prefixes the model needs to retrieve well (the provider knows its models).
    /// Core puts them before every text (``DocumentText``), so they are part of the hashed text,
    /// the token budget and the model identity whoever serves the model; `text.query_prefix` and
    /// `text.document_prefix` override them unless ``prefixesFixed``.
    public var prefixes: TaskPrefixes
    /// The backend puts ``prefixes`` before every text itself and cannot be told otherwise (the
    /// local e5 engine): the provider takes Core's copy off before calling it, and a configured
    /// prefix that differs is a configuration error instead of vectors that do not match their
    /// model identity.
    public var prefixesFixed: Bool

    public init(name: String, dimensions: Int? = nil, maxBatchSize: Int, maxInputTokens: Int? = nil, maxBatchTokens: Int? = nil,
                prefixes: TaskPrefixes = .none, prefixesFixed: Bool = false) {
        self.prefixes = prefixes
        self.prefixesFixed = prefixesFixed
        self.name = name
        self.dimensions = dimensions
        self.maxBatchSize = maxBatchSize
        self.maxInputTokens = maxInputTokens
        self.maxBatchTokens = maxBatchTokens
    }
}

/// Turns texts into vectors.
///
/// The contract an implementation must keep:
/// - `embed` returns exactly one vector per input text, in input order, each of the model's
///   dimension. It never returns a partial or reordered answer; if it cannot keep this promise
///   it throws.
/// - It never sends more than `model.maxBatchSize` texts in one call to its backend (the
///   pipeline already batches by that number, but a provider must not rely on it).
/// - Errors are thrown as ``EmbeddingError`` with the right ``EmbeddingError/Kind``: the pipeline
///   retries `.retryable`, waits on `.rateLimited`, isolates the item on `.invalidInput`, and
///   stops the run on `.fatal`. Any other error is treated as retryable.
/// - `health()` is cheap and never spends an embedding (no paid call, no model run).
/// - It honours task cancellation and is safe to call from many tasks at once.
public protocol EmbeddingProvider: Sendable {
    /// What is known about the model without a network call.
    var model: ModelInfo { get }

    /// Called once before the first `embed`: may ask the backend about the model (dimensions,
    /// context length) without spending an embedding. The default returns `model`.
    func prepare() async throws -> ModelInfo

    /// Embeds `texts` (never empty strings; at most `model.maxBatchSize` of them).
    func embed(_ texts: [String], mode: EmbeddingMode) async throws -> [[Float]]

    /// Tokens `text` costs this model. The default is ``TokenEstimator``'s conservative estimate.
    func tokenCount(_ text: String) -> Int

    /// Whether the backend answers. Must not spend an embedding.
    func health() async -> ComponentHealth
}

extension EmbeddingProvider {
    public func prepare() async throws -> ModelInfo { model }

    public func tokenCount(_ text: String) -> Int { TokenEstimator.estimate(text) }
}

extension EmbeddingProvider {
    /// Runs `send` on consecutive slices of at most `model.maxBatchSize` texts and joins the
    /// answers in order, so a backend never gets more than its limit in one call (and an empty
    /// batch never reaches it). An
    /// `.invalidInput` error from a slice names its inputs by their index in `texts`.
    public func inBatches(_ texts: [String], _ send: ([String]) async throws -> [[Float]]) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let size = max(1, model.maxBatchSize)
        guard texts.count > size else { return try await send(texts) }
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        for start in stride(from: 0, to: texts.count, by: size) {
            let slice = Array(texts[start..<min(start + size, texts.count)])
            do {
                vectors += try await send(slice)
            } catch let error as EmbeddingError {
                guard case .invalidInput(let indices?) = error.kind else { throw error }
                throw EmbeddingError(.invalidInput(indices: indices.map { $0 + start }), error.message)
            }
        }
        return vectors
    }
}
