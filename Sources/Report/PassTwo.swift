import Dispatch
import EmbedStarCore
import Foundation
import Logging

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
