import EmbedStarCore
import Foundation

/// A unit vector in a quarter of its bytes, for the search's first pass: each component over
/// the largest component's magnitude, times 127, rounded to a signed byte. Stored as the scale
/// (the largest magnitude / 127, a little-endian float32) and then the bytes. The dot product
/// of two codes times their scales is their cosine to within about 0.002 at 384 dimensions.
struct VectorCode {
    let scale: Float
    let bytes: [Int8]

    /// Nil for a vector with no direction or that is not finite.
    init?(_ unit: [Float]?) {
        guard let unit, let largest = unit.lazy.map(abs).max(), largest > 0, largest.isFinite else { return nil }
        scale = largest / 127
        bytes = unit.map { Int8(($0 / largest * 127).rounded()) }
    }

    static func length(_ dimensions: Int) -> Int { 4 + dimensions }

    var data: Data {
        var data = Data(capacity: Self.length(bytes.count))
        withUnsafeBytes(of: scale.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        bytes.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The approximate cosine of this code (its bytes at `query`) and a stored code at `stored`.
    @inline(__always)
    func score(_ query: UnsafeRawPointer, _ stored: UnsafeRawPointer) -> Double {
        let storedScale = Float(bitPattern: UInt32(littleEndian: stored.loadUnaligned(as: UInt32.self)))
        return Double(scale * storedScale) * Double(VectorKernels.dot(int8: query, stored + 4, count: bytes.count))
    }
}

/// Vectors as little-endian float32 blobs, and the cosine over them.
enum VectorBlob {
    static func encode(_ vector: [Float]) -> Data {
        var data = Data(count: vector.count * 4)
        data.withUnsafeMutableBytes { raw in
            for (i, value) in vector.enumerated() { raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        return data
    }

    static func decode(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in
            (0..<raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// `vector` scaled to length 1, or nil when it has no direction or is not finite.
    static func normalized(_ vector: [Float]) -> [Float]? {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return nil }
        return vector.map { $0 / norm }
    }

    /// Cosine of a unit `query` and a stored vector, both `count` floats read in place; nil for
    /// a zero vector. Little-endian hosts only (every platform Swift on Linux and macOS runs on).
    @inline(__always)
    static func cosine(_ query: UnsafeRawPointer, _ vector: UnsafeRawPointer, count: Int) -> Double? {
        let (dot, squared) = VectorKernels.dotAndSquaredLength(query, vector, count: count)
        guard squared > 0 else { return nil }
        return Double(dot / squared.squareRoot())
    }
}

/// The `capacity` best scores seen, as a bounded min-heap.
struct TopK {
    let capacity: Int
    private var heap: [(score: Double, seq: Int64)] = []

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    mutating func insert(score: Double, seq: Int64) {
        if heap.count < capacity {
            heap.append((score, seq))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].score < heap[parent].score else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        } else if score > heap[0].score {
            heap[0] = (score, seq)
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count, heap[left].score < heap[smallest].score { smallest = left }
                if right < heap.count, heap[right].score < heap[smallest].score { smallest = right }
                guard smallest != parent else { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Best first.
    func sorted() -> [(score: Double, seq: Int64)] {
        heap.sorted { $0.score > $1.score }
    }
}
