import Foundation

/// Everything `embed-star report` measured: the page shows it, `--json` prints it. Every figure
/// comes from what the store holds (or, for the service section, from a running instance's
/// `/metrics`); nothing is inferred from what is missing.
public struct Report: Codable, Sendable {
    public var generatedAt: Date
    public var store: String
    public var provider: String
    /// The model identity this configuration embeds with (``ModelIdentity``).
    public var model: String
    public var backlog: Backlog
    public var failures: Failures
    public var service: Service
    public var quality: Quality
    public var map: StarMap
    public var timings: Timings

    public struct Backlog: Codable, Sendable {
        /// As `status` reports them (the store's counts).
        public var total, embedded, pending, failed, leased: Int
        /// The same counts from the scan of every record: they agree unless repos changed meanwhile.
        public var scanned: Scanned
        /// Records that could not be read at all (never handed out; see the store's log).
        public var unreadable: Int
        public var vectorsByModel: [ModelVectors]
        /// When the longest-waiting pending repo was queued, and its age in seconds at the report.
        public var oldestPendingSince: Date?
        public var oldestPendingSeconds: Double?
        /// Pending repos whose store did not record when they were queued (from before it did).
        public var pendingWithoutTime: Int
    }

    public struct Scanned: Codable, Sendable {
        public var total, embedded, pending, failed: Int
    }

    public struct ModelVectors: Codable, Sendable {
        public var model: String
        public var vectors: Int
        public var current: Bool
        /// Share of all repos.
        public var share: Double
    }

    public struct Failures: Codable, Sendable {
        /// Repos marked failed: what `retry-failed` puts back in the queue.
        public var failed: Int
        /// Pending repos whose last attempt failed (they will be tried again).
        public var retrying: Int
        public var groups: [FailureGroup]
    }

    public struct FailureGroup: Codable, Sendable {
        /// The reason with ids, numbers and quoted values replaced, so one cause is one group.
        public var reason: String
        /// One reason as stored.
        public var example: String
        public var count: Int
        public var failed: Int
        public var retrying: Int
        public var maxAttempts: Int
        public var repos: [String]
    }

    public struct Service: Codable, Sendable {
        /// The `/metrics` address read, if any.
        public var source: String?
        public var available: Bool
        /// What could not be seen, or how the figures were taken.
        public var note: String
        /// Seconds between the two scrapes the rates come from.
        public var windowSeconds: Double?
        public var embeddingsPerSecond: Double?
        public var embeddingsTotal: Double?
        public var providerLatencyP50Ms: Double?
        public var providerLatencyP95Ms: Double?
        public var providerRequests: Double?
        /// Provider calls that failed, over all provider calls, in the window (or since start).
        public var errorRatio: Double?
        public var errorsByKind: [String: Double]
        public var rateLimitWaits: Double?
        /// closed, open or half-open.
        public var circuit: String?
        public var cacheHits: Double?
        public var cacheMisses: Double?
        public var cacheHitRate: Double?
        public var unchangedSkips: Double?
    }

    public struct Quality: Codable, Sendable {
        public var seed: UInt64
        public var vectors: VectorChecks
        public var selfRetrieval: SelfRetrieval?
        public var nearDuplicates: NearDuplicates
        public var outliers: Outliers
        public var modelAgreement: ModelAgreement?
        /// What could not be measured, and why.
        public var notes: [String]
    }

    public struct VectorChecks: Codable, Sendable {
        /// Vectors of any model read.
        public var checked: Int
        /// Vectors per length, per model.
        public var dimensions: [DimensionCount]
        /// Vectors of the current model whose length is not the model's.
        public var wrongDimension: Int
        /// Vectors of length zero or with a value that is not a number.
        public var zeroOrNotFinite: Int
        public var normMin: Double?
        public var normMax: Double?
        public var normMean: Double?
        /// Vectors whose length is more than 1% away from 1, when the model's vectors are unit vectors.
        public var offUnitNorm: Int
        /// Vectors of the current model whose stored text hash no longer matches the repo's text.
        public var staleHash: Int
        /// Of those, how many are already pending (the pipeline will re-embed them).
        public var staleHashPending: Int
        public var staleExamples: [String]
    }

    public struct DimensionCount: Codable, Sendable {
        public var model: String
        public var dimensions: Int
        public var vectors: Int
    }

    public struct SelfRetrieval: Codable, Sendable {
        /// Sampled repos whose description was embedded as a query.
        public var queries: Int
        /// Share of queries whose own repo came first.
        public var top1: Double
        /// Share of queries whose own repo was among the first ten.
        public var top10: Double
        public var worst: [Miss]
    }

    public struct Miss: Codable, Sendable {
        public var repo: String
        /// 1 is first.
        public var rank: Int
        public var description: String
        public var foundInstead: String
    }

    public struct NearDuplicates: Codable, Sendable {
        public var threshold: Double
        /// Vectors compared pairwise (the map's sample).
        public var compared: Int
        public var groups: [DuplicateGroup]
    }

    public struct DuplicateGroup: Codable, Sendable {
        /// The highest similarity between two repos of the group.
        public var similarity: Double
        public var repos: [String]
    }

    public struct Outliers: Codable, Sendable {
        /// Vectors of the current model compared with their centroid.
        public var compared: Int
        public var meanSimilarity: Double?
        public var standardDeviation: Double?
        /// Similarity to the centroid below this is an outlier (mean - 4 standard deviations).
        public var threshold: Double?
        /// How many fall below it.
        public var count: Int
        /// The furthest, furthest first.
        public var items: [Outlier]
    }

    public struct Outlier: Codable, Sendable {
        public var repo: String
        public var similarityToCentroid: Double
        public var text: String
    }

    public struct ModelAgreement: Codable, Sendable {
        public var otherModel: String
        /// Repos holding the other model's vector, embedded again with the current model.
        public var repos: Int
        public var k: Int
        /// Mean share of the k nearest neighbours both models agree on (1 is full agreement).
        public var overlap: Double
    }

    public struct StarMap: Codable, Sendable {
        public var points: Int
        public var method: String
        /// Share of the sample's variance each axis holds.
        public var explainedVariance: [Double]
        public var languages: [LanguageColor]
        /// The inline SVG (not in the JSON).
        public var svg: String = ""

        enum CodingKeys: String, CodingKey { case points, method, explainedVariance, languages }
    }

    public struct LanguageColor: Codable, Sendable {
        public var language: String
        public var color: String
        public var points: Int
    }

    public struct Timings: Codable, Sendable {
        /// The first pass over every repo (counts, checks, samples).
        public var scanSeconds: Double
        /// Provider calls: the sampled queries, and the model-agreement texts.
        public var embedSeconds: Double
        /// Everything, from the first store call to the finished report.
        public var totalSeconds: Double
        public var embeddedTexts: Int
    }

    /// The JSON `--json` prints: snake_case keys, ISO 8601 dates, sorted keys.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }
}
