import Dispatch
import EmbedStarCore
import Foundation
import Logging

/// How much `report` samples and where it draws its lines.
public struct ReportOptions: Sendable {
    /// Repos whose description is embedded as a query (self-retrieval).
    public var sampleSize = 1_000
    /// Repos on the map, also compared pairwise for near-duplicates.
    public var mapSize = 5_000
    /// The same seed samples the same repos.
    public var seed: UInt64 = 1
    /// Cosine from which two repos with different names are near-duplicates.
    public var duplicateThreshold = 0.96
    /// A vector whose similarity to the centroid is this many standard deviations below the mean is an outlier.
    public var outlierDeviations = 4.0
    /// Repos embedded again with the current model to compare with another model's neighbours.
    public var agreementRepos = 200
    /// Rows in each list.
    public var listed = 20
    public var pageSize = 500

    public init() {}
}

/// What the report reads and embeds with.
public struct ReportSources: Sendable {
    public var store: any RepoStore
    public var storeName: String
    public var provider: any EmbeddingProvider
    public var providerName: String
    public var text: TextConfiguration
    /// The service section, read from a running instance beforehand (``Report/Service/unseen`` when none).
    public var service: Report.Service

    public init(store: any RepoStore, storeName: String, provider: any EmbeddingProvider, providerName: String,
                text: TextConfiguration = TextConfiguration(), service: Report.Service = .unseen) {
        self.store = store
        self.storeName = storeName
        self.provider = provider
        self.providerName = providerName
        self.text = text
        self.service = service
    }
}

/// Builds a ``Report``: two passes over every stored repo (a page at a time, memory flat), and
/// provider calls for a bounded sample.
///
/// - Pass 1 counts states and failures, checks every vector (length, norm, text hash), sums the
///   current model's centroid, and keeps bottom-k samples by a seeded hash of the repo id (the
///   same seed picks the same repos whatever order the store pages in).
/// - The sampled descriptions are embedded as queries.
/// - Pass 2 scores every vector of the current model against the centroid (outliers) and against
///   each query (the rank at which each query finds its own repo).
/// - Near-duplicates and the map come from the map's sample.
public struct ReportBuilder: Sendable {
    let sources: ReportSources
    let options: ReportOptions
    let logger: Logger

    public init(sources: ReportSources, options: ReportOptions = ReportOptions(), logger: Logger = Logger(label: "embed-star.report")) {
        self.sources = sources
        self.options = options
        self.logger = logger
    }

    /// A sampled repo of the current model, its vector of length 1.
    struct Sampled {
        var id: RepoID
        var name: String
        var language: String?
        var description: String
        var vector: [Float]
    }

    public func build() async throws -> Report {
        let started = ContinuousClock.now, now = Date()
        let store = sources.store, provider = sources.provider
        let modelInfo = try await provider.prepare()
        let document = try DocumentText(providerName: sources.providerName, model: modelInfo, text: sources.text)
        let model = document.modelIdentity
        let stats = try await store.stats(modelIdentity: model)
        let coverage = try await store.coverage()
        let other = coverage.filter { $0.key != model }.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key

        // Pass 1.
        var pass1 = PassOne(document: document, model: model, expectedDimensions: modelInfo.dimensions, otherModel: other, options: options,
                            tokenCount: provider.tokenCount)
        try await store.forEachPage(modelIdentity: model, pageSize: options.pageSize) { page in pass1.add(page) }
        let dimensions = pass1.currentDimensions
        var notes: [String] = []
        let scanned = ContinuousClock.now - started
        logger.info("report: first pass done", metadata: [
            "repos": "\(pass1.scanned.total)", "seconds": "\(String(format: "%.1f", scanned.seconds))", "sampled": "\(pass1.mapSample.count)",
        ])

        // The queries: each sampled description alone, as a search would embed it.
        var embedTime = Duration.zero, embeddedTexts = 0
        let queries = pass1.querySample.items
        var queryVectors = Matrix(columns: dimensions ?? 0)
        var queryTargets: [Sampled] = []
        if let dimensions, !queries.isEmpty {
            let clock = ContinuousClock.now
            let vectors = try await provider.inBatches(queries.map { document.query($0.description) }) { batch in
                try await provider.embed(batch, mode: .query)
            }
            embedTime += ContinuousClock.now - clock
            embeddedTexts += queries.count
            for (query, vector) in zip(queries, vectors) {
                guard vector.count == dimensions, let unit = VectorMath.unit(vector) else { continue }
                queryVectors.append(unit)
                queryTargets.append(query)
            }
            if queryTargets.count < queries.count {
                notes.append("\(queries.count - queryTargets.count) query vectors were unusable (wrong length or not finite)")
            }
        } else if options.sampleSize == 0 {
            notes.append("self-retrieval not measured: the sample is 0 (--sample)")
        } else if dimensions == nil {
            notes.append("self-retrieval not measured: no repo holds a vector of \(model) yet")
        } else {
            notes.append("self-retrieval not measured: no repo holding a vector of \(model) has a description")
        }

        // Pass 2.
        var pass2 = PassTwo(model: model, dimensions: dimensions, centroid: pass1.centroid, queries: queryVectors, targets: queryTargets,
                            outliers: options.listed)
        if dimensions != nil {
            try await store.forEachPage(modelIdentity: model, pageSize: options.pageSize) { page in pass2.add(page) }
        }

        logger.info("report: second pass done", metadata: ["seconds": "\(String(format: "%.1f", (ContinuousClock.now - started).seconds))"])

        // Agreement with another model's neighbours.
        var agreement: Report.ModelAgreement?
        let others = pass1.otherSample.items
        if let other, others.count >= 11 {
            let clock = ContinuousClock.now
            let texts = others.map { document.text(for: $0.repo, tokenCount: provider.tokenCount) }
            let usable = zip(others, texts).filter { !$0.1.isEmpty }
            let fresh = try await provider.inBatches(usable.map(\.1)) { batch in try await provider.embed(batch, mode: .document) }
            embedTime += ContinuousClock.now - clock
            embeddedTexts += usable.count
            let old = usable.compactMap { VectorMath.unit($0.0.vector) }
            let new = fresh.compactMap(VectorMath.unit)
            if old.count == usable.count, new.count == usable.count {
                agreement = Report.ModelAgreement(otherModel: other, repos: usable.count, k: 10,
                                                  overlap: Self.neighbourOverlap(old, new, k: 10))
            }
        } else if other != nil {
            notes.append("model agreement not measured: fewer than 11 repos hold the other model's vector")
        }

        let sample = pass1.mapSample.items
        let duplicates = Self.nearDuplicates(sample, threshold: options.duplicateThreshold)
        let map = StarMapProjection.make(sample, seed: options.seed)

        var vectorsByModel = coverage.map { name, count in
            Report.ModelVectors(model: name, vectors: count, current: name == model, share: stats.total > 0 ? Double(count) / Double(stats.total) : 0)
        }
        vectorsByModel.sort { ($0.current ? 1 : 0, $0.vectors, $1.model) > ($1.current ? 1 : 0, $1.vectors, $0.model) }
        if !vectorsByModel.contains(where: \.current) {
            vectorsByModel.insert(Report.ModelVectors(model: model, vectors: 0, current: true, share: 0), at: 0)
        }

        let retrieval: Report.SelfRetrieval? = queryTargets.isEmpty ? nil : pass2.selfRetrieval(targets: queryTargets, listed: options.listed)
        let quality = Report.Quality(
            seed: options.seed, vectors: pass1.vectorChecks(listed: options.listed), selfRetrieval: retrieval,
            nearDuplicates: Report.NearDuplicates(threshold: options.duplicateThreshold, compared: sample.count, groups: duplicates),
            outliers: pass2.outliers(deviations: options.outlierDeviations) { document.text(for: $0, tokenCount: provider.tokenCount) },
            modelAgreement: agreement, notes: notes)
        let total = ContinuousClock.now - started
        return Report(
            generatedAt: now, store: sources.storeName, provider: "\(sources.providerName) (\(modelInfo.name))", model: model,
            backlog: Report.Backlog(total: stats.total, embedded: stats.embedded, pending: stats.pending, failed: stats.failed, leased: stats.leased,
                                    scanned: pass1.scanned, unreadable: pass1.unreadable, vectorsByModel: vectorsByModel,
                                    oldestPendingSince: pass1.oldestPending, oldestPendingSeconds: pass1.oldestPending.map { max(0, now.timeIntervalSince($0)) },
                                    pendingWithoutTime: pass1.pendingWithoutTime),
            failures: Report.Failures(failed: stats.failed, retrying: pass1.retrying, groups: pass1.failures.sorted),
            service: sources.service, quality: quality, map: map,
            timings: Report.Timings(scanSeconds: scanned.seconds, embedSeconds: embedTime.seconds, totalSeconds: total.seconds,
                                    embeddedTexts: embeddedTexts))
    }

    /// Mean share of each repo's `k` nearest neighbours (within the set) that two sets of vectors
    /// of the same repos agree on.
    static func neighbourOverlap(_ a: [[Float]], _ b: [[Float]], k: Int) -> Double {
        func neighbours(_ vectors: [[Float]], _ i: Int) -> Set<Int> {
            let scores = vectors.indices.filter { $0 != i }.map { ($0, VectorMath.dot(vectors[i], vectors[$0])) }
            return Set(scores.sorted { $0.1 > $1.1 }.prefix(k).map(\.0))
        }
        guard a.count > k else { return 0 }
        var total = 0.0
        for i in a.indices { total += Double(neighbours(a, i).intersection(neighbours(b, i)).count) / Double(k) }
        return total / Double(a.count)
    }

    /// Groups of sampled repos with different names whose vectors are at least `threshold` alike,
    /// most alike first. Each group has a leader that every other member is that alike to (pairs
    /// taken most alike first; a repo joins one group), so groups do not chain through repos that
    /// are each alike to the next.
    static func nearDuplicates(_ sample: [Sampled], threshold: Double) -> [Report.DuplicateGroup] {
        guard sample.count > 1, let columns = sample.first?.vector.count else { return [] }
        var matrix = Matrix(columns: columns)
        var kept: [Int] = []
        for (index, item) in sample.enumerated() where item.vector.count == columns {
            matrix.append(item.vector)
            kept.append(index)
        }
        var pairs: [(a: Int, b: Int, similarity: Float)] = []
        let limit = Float(threshold)
        matrix.values.withUnsafeBufferPointer { m in
            let base = m.baseAddress!
            for i in 0..<matrix.rows {
                for j in (i + 1)..<matrix.rows {
                    let score = VectorMath.dot(base + i * columns, base + j * columns, columns)
                    if score >= limit, sample[kept[i]].name != sample[kept[j]].name { pairs.append((kept[i], kept[j], score)) }
                }
            }
        }
        pairs.sort { ($0.similarity, $1.a, $1.b) > ($1.similarity, $0.a, $0.b) }
        var leaderOf: [Int: Int] = [:]
        var groups: [Int: (similarity: Float, members: [Int])] = [:]
        for pair in pairs {
            switch (leaderOf[pair.a], leaderOf[pair.b]) {
            case (nil, nil):
                leaderOf[pair.a] = pair.a
                leaderOf[pair.b] = pair.a
                groups[pair.a] = (pair.similarity, [pair.a, pair.b])
            case (let leader?, nil) where leader == pair.a:
                leaderOf[pair.b] = leader
                groups[leader]?.members.append(pair.b)
            case (nil, let leader?) where leader == pair.b:
                leaderOf[pair.a] = leader
                groups[leader]?.members.append(pair.a)
            default:
                continue
            }
        }
        return groups.values.map { group in
            Report.DuplicateGroup(similarity: Double(group.similarity), repos: group.members.map { sample[$0].name }.sorted())
        }.sorted { ($0.similarity, $1.repos.first ?? "") > ($1.similarity, $0.repos.first ?? "") }
    }
}
