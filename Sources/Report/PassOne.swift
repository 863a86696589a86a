import Dispatch
import EmbedStarCore
import Foundation
import Logging

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
            let key = SeededRandom.key(repo.id.rawValue, seed: options.seed)
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
