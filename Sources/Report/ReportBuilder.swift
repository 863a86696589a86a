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
        let stats = try await store.stats(model: model)
        let coverage = try await store.coverage()
        let other = coverage.filter { $0.key != model }.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key

        // Pass 1.
        var pass1 = PassOne(document: document, model: model, expectedDimensions: modelInfo.dimensions, otherModel: other, options: options,
                            tokenCount: provider.tokenCount)
        try await store.forEachPage(model: model, pageSize: options.pageSize) { page in pass1.add(page) }
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
            let vectors = try await provider.inBatches(queries.map { document.prefixes.query + $0.description }) { batch in
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
            try await store.forEachPage(model: model, pageSize: options.pageSize) { page in pass2.add(page) }
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

/// Pass 1: counts, failures, vector checks, centroid, samples.
struct PassOne {
    let document: DocumentText
    let model: String
    let expectedDimensions: Int?
    let otherModel: String?
    let options: ReportOptions
    let tokenCount: @Sendable (String) -> Int

    var scanned = Report.Scanned(total: 0, embedded: 0, pending: 0, failed: 0)
    var unreadable = 0
    var retrying = 0
    var oldestPending: Date?
    var pendingWithoutTime = 0
    var failures = FailureReasons()
    var dimensionCounts: [String: [Int: Int]] = [:]
    var norms = RunningStats()
    var zeroOrNotFinite = 0
    var offUnitNorm = 0
    var staleHash = 0
    var staleHashPending = 0
    var staleExamples: [String] = []
    var centroidSum: [Double] = []
    var mapSample: BottomK<ReportBuilder.Sampled>
    var querySample: BottomK<ReportBuilder.Sampled>
    var otherSample: BottomK<(repo: Repo, vector: [Float])>

    init(document: DocumentText, model: String, expectedDimensions: Int?, otherModel: String?, options: ReportOptions,
         tokenCount: @escaping @Sendable (String) -> Int) {
        self.document = document
        self.model = model
        self.expectedDimensions = expectedDimensions
        self.otherModel = otherModel
        self.options = options
        self.tokenCount = tokenCount
        mapSample = BottomK(capacity: options.mapSize)
        querySample = BottomK(capacity: options.sampleSize)
        otherSample = BottomK(capacity: options.agreementRepos)
    }

    /// The current model's vector length: the one the model declares, else the most common.
    var currentDimensions: Int? {
        expectedDimensions ?? dimensionCounts[model]?.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
    }

    mutating func add(_ page: ScanPage) {
        unreadable += page.unreadable
        for stored in page.repos {
            let repo = stored.repo
            scanned.total += 1
            switch stored.state {
            case .embedded: scanned.embedded += 1
            case .pending:
                scanned.pending += 1
                if let since = stored.pendingSince {
                    oldestPending = min(oldestPending ?? since, since)
                } else {
                    pendingWithoutTime += 1
                }
            case .failed: scanned.failed += 1
            }
            if let reason = stored.lastError, stored.state != .embedded {
                if stored.state == .pending { retrying += 1 }
                failures.add(StoredRepoSummary(name: repo.fullName, reason: reason, failed: stored.state == .failed, attempts: stored.attempts))
            }
            guard let vector = stored.embedding else { continue }
            let owner = stored.embeddingModel ?? "(unknown)"
            dimensionCounts[owner, default: [:]][vector.count, default: 0] += 1
            let norm = Double(VectorMath.norm(vector))
            guard norm > 0, norm.isFinite, vector.allSatisfy(\.isFinite) else {
                zeroOrNotFinite += 1
                continue
            }
            let unit = vector.map { $0 / Float(norm) }
            norms.add(norm)
            if abs(norm - 1) > 0.01 { offUnitNorm += 1 }
            let key = SeededGenerator.key(repo.id.rawValue, seed: options.seed)
            if owner == otherModel, otherSample.admits(key) { otherSample.insert((repo, vector), key: key) }
            guard owner == model else { continue }
            if document.hash(document.text(for: repo, tokenCount: tokenCount)) != stored.embeddingHash {
                staleHash += 1
                if stored.state != .embedded { staleHashPending += 1 }
                if staleExamples.count < options.listed { staleExamples.append(repo.fullName) }
            }
            if let expected = expectedDimensions, vector.count != expected { continue }
            if centroidSum.isEmpty { centroidSum = [Double](repeating: 0, count: unit.count) }
            guard unit.count == centroidSum.count else { continue }
            for i in unit.indices { centroidSum[i] += Double(unit[i]) }
            let description = repo.description?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if mapSample.admits(key) || (!description.isEmpty && querySample.admits(key)) {
                let sampled = ReportBuilder.Sampled(id: repo.id, name: repo.fullName, language: repo.language, description: description, vector: unit)
                mapSample.insert(sampled, key: key)
                if !description.isEmpty { querySample.insert(sampled, key: key) }
            }
        }
    }

    var centroid: [Float]? {
        VectorMath.unit(centroidSum.map(Float.init))
    }

    func vectorChecks(listed: Int) -> Report.VectorChecks {
        var dimensions: [Report.DimensionCount] = []
        for (owner, counts) in dimensionCounts {
            for (length, count) in counts { dimensions.append(Report.DimensionCount(model: owner, dimensions: length, vectors: count)) }
        }
        dimensions.sort { ($0.model == model ? 1 : 0, $0.vectors) > ($1.model == model ? 1 : 0, $1.vectors) }
        let current = dimensionCounts[model] ?? [:]
        let wrong = currentDimensions.map { expected in current.filter { $0.key != expected }.values.reduce(0, +) } ?? 0
        // Off-unit norms only mean something for a model that makes unit vectors.
        let unitModel = norms.count > 0 && offUnitNorm * 2 < norms.count
        return Report.VectorChecks(
            checked: dimensionCounts.values.flatMap(\.values).reduce(0, +), dimensions: dimensions, wrongDimension: wrong,
            zeroOrNotFinite: zeroOrNotFinite, normMin: norms.count > 0 ? norms.min : nil, normMax: norms.count > 0 ? norms.max : nil,
            normMean: norms.count > 0 ? norms.mean : nil, offUnitNorm: unitModel ? offUnitNorm : 0, staleHash: staleHash,
            staleHashPending: staleHashPending, staleExamples: staleExamples)
    }
}

/// Pass 2: every vector of the current model against the centroid and the queries.
struct PassTwo {
    let model: String
    let dimensions: Int?
    let centroid: [Float]?
    let queries: Matrix
    let targetIndex: [RepoID: Int]
    /// Per query: its own repo's score (from the sampled vector), how many other vectors scored
    /// above it, and the best of them.
    let targetScores: [Float]
    var beaten: [Int]
    var bestOther: [(score: Float, name: String)]
    /// Every vector's similarity to the centroid (4 bytes a repo), and the furthest repos.
    var similarities: [Float] = []
    var furthest: LowestK<(repo: Repo, similarity: Double)>

    init(model: String, dimensions: Int?, centroid: [Float]?, queries: Matrix, targets: [ReportBuilder.Sampled], outliers: Int) {
        self.model = model
        self.dimensions = dimensions
        self.centroid = centroid
        self.queries = queries
        targetIndex = Dictionary(targets.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        targetScores = targets.enumerated().map { q, target in
            queries.row(q).withUnsafeBufferPointer { row in
                target.vector.withUnsafeBufferPointer { VectorMath.dot(row.baseAddress!, $0.baseAddress!, row.count) }
            }
        }
        furthest = LowestK(capacity: outliers)
        beaten = [Int](repeating: 0, count: queries.rows)
        bestOther = [(score: Float, name: String)](repeating: (-.infinity, ""), count: queries.rows)
    }

    mutating func add(_ page: ScanPage) {
        guard let dimensions else { return }
        var rows: [(repo: Repo, unit: [Float])] = []
        for stored in page.repos where stored.embeddingModel == model {
            guard let vector = stored.embedding, vector.count == dimensions, let unit = VectorMath.unit(vector) else { continue }
            rows.append((stored.repo, unit))
        }
        if let centroid {
            for row in rows {
                let similarity = VectorMath.dot(row.unit, centroid)
                similarities.append(similarity)
                furthest.insert((row.repo, Double(similarity)), score: Double(similarity))
            }
        }
        guard queries.rows > 0, !rows.isEmpty else { return }
        let scores = Self.scores(queries, rows.map(\.unit))
        for (r, row) in rows.enumerated() {
            let own = targetIndex[row.repo.id]
            for q in 0..<queries.rows where q != own {
                let score = scores[r * queries.rows + q]
                if score > targetScores[q] {
                    beaten[q] += 1
                    if score > bestOther[q].score { bestOther[q] = (score, row.repo.fullName) }
                }
            }
        }
    }

    /// `scores[r * queries.rows + q]`: vector `r` against query `q`, on two threads.
    static func scores(_ queries: Matrix, _ vectors: [[Float]]) -> [Float] {
        let rows = queries.rows, columns = queries.columns
        var scores = [Float](repeating: 0, count: vectors.count * rows)
        let halves = vectors.count > 64 ? 2 : 1
        let split = (vectors.count + 1) / 2
        scores.withUnsafeMutableBufferPointer { out in
            let output = UnsafeSendable(out.baseAddress!)
            queries.values.withUnsafeBufferPointer { q in
                let base = UnsafeSendable(UnsafeMutablePointer(mutating: q.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: halves) { half in
                    let range = halves == 1 ? 0..<vectors.count : half == 0 ? 0..<split : split..<vectors.count
                    for r in range {
                        vectors[r].withUnsafeBufferPointer { v in
                            for i in 0..<rows {
                                output.pointer[r * rows + i] = VectorMath.dot(base.pointer + i * columns, v.baseAddress!, columns)
                            }
                        }
                    }
                }
            }
        }
        return scores
    }

    func selfRetrieval(targets sampled: [ReportBuilder.Sampled], listed: Int) -> Report.SelfRetrieval {
        var top1 = 0, top10 = 0
        var misses: [Report.Miss] = []
        for (q, target) in sampled.enumerated() {
            let rank = beaten[q] + 1
            if rank == 1 { top1 += 1 }
            if rank <= 10 { top10 += 1 }
            if rank > 1 {
                misses.append(Report.Miss(repo: target.name, rank: rank, description: target.description, foundInstead: bestOther[q].name))
            }
        }
        misses.sort { ($0.rank, $1.repo) > ($1.rank, $0.repo) }
        let count = Double(max(1, sampled.count))
        return Report.SelfRetrieval(queries: sampled.count, top1: Double(top1) / count, top10: Double(top10) / count,
                                    worst: Array(misses.prefix(listed)))
    }

    func outliers(deviations: Double, text: (Repo) -> String) -> Report.Outliers {
        var stats = RunningStats()
        for similarity in similarities { stats.add(Double(similarity)) }
        guard stats.count > 1 else { return Report.Outliers(compared: stats.count, count: 0, items: []) }
        let threshold = stats.mean - deviations * stats.standardDeviation
        let items = furthest.items.filter { $0.similarity < threshold }.map {
            Report.Outlier(repo: $0.repo.fullName, similarityToCentroid: $0.similarity, text: text($0.repo))
        }
        return Report.Outliers(compared: stats.count, meanSimilarity: stats.mean, standardDeviation: stats.standardDeviation, threshold: threshold,
                               count: similarities.reduce(0) { $0 + (Double($1) < threshold ? 1 : 0) }, items: items)
    }
}

/// A pointer handed to the threads of `concurrentPerform`, each writing its own range.
struct UnsafeSendable<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
