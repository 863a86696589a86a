/// Checks a vector before it is written: right length, finite values, a usable norm, not mostly
/// zeros. A vector that fails is never written; the repo is retried.
public struct VectorValidator: Sendable {
    public var minNorm: Float = 1e-6
    public var maxNorm: Float = 1e4
    /// The share of exact zeros above which a vector is rejected (real models give almost none).
    public var maxZeroFraction: Double = 0.5

    public init() {}

    /// `nil` when the vector is fine, else what is wrong with it.
    public func problem(with vector: [Float], expectedDimensions: Int?) -> String? {
        if vector.isEmpty { return "empty vector" }
        if let expectedDimensions, vector.count != expectedDimensions {
            return "vector has \(vector.count) dimensions, expected \(expectedDimensions)"
        }
        var sumOfSquares: Float = 0
        var zeros = 0
        for value in vector {
            guard value.isFinite else { return "vector contains \(value.isNaN ? "NaN" : "infinity")" }
            sumOfSquares += value * value
            if value == 0 { zeros += 1 }
        }
        let norm = sumOfSquares.squareRoot()
        if norm < minNorm { return "vector has zero norm" }
        if norm > maxNorm { return "vector norm \(norm) is above \(maxNorm)" }
        if vector.count >= 8, Double(zeros) / Double(vector.count) > maxZeroFraction {
            return "vector is mostly zeros (\(zeros) of \(vector.count))"
        }
        return nil
    }
}
