import EmbedStarCore

/// The few vector operations the report needs, on contiguous `Float` buffers.
enum VectorMath {
    /// The dot product of `count` floats (``VectorKernels``).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        VectorKernels.dot(UnsafeRawPointer(a), UnsafeRawPointer(b), count: count)
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in dot(x.baseAddress!, y.baseAddress!, a.count) } }
    }

    static func norm(_ vector: [Float]) -> Float {
        dot(vector, vector).squareRoot()
    }

    /// `vector` scaled to length 1; nil when it has no direction or a value is not finite.
    static func unit(_ vector: [Float]) -> [Float]? {
        guard !vector.isEmpty, vector.allSatisfy(\.isFinite) else { return nil }
        let length = norm(vector)
        guard length > 0, length.isFinite else { return nil }
        return vector.map { $0 / length }
    }
}

/// Row-major rows of one length, in one allocation.
struct Matrix {
    let columns: Int
    private(set) var values: [Float] = []
    var rows: Int { columns == 0 ? 0 : values.count / columns }

    init(columns: Int) {
        self.columns = columns
    }

    mutating func append(_ row: [Float]) {
        precondition(row.count == columns)
        values.append(contentsOf: row)
    }

    func row(_ index: Int) -> ArraySlice<Float> {
        values[index * columns..<(index + 1) * columns]
    }

    /// The dot product of every row with `vector`, into `scores` (one per row).
    func dots(with vector: [Float], into scores: inout [Float]) {
        precondition(vector.count == columns)
        if scores.count != rows { scores = [Float](repeating: 0, count: rows) }
        let n = columns
        values.withUnsafeBufferPointer { m in
            vector.withUnsafeBufferPointer { v in
                scores.withUnsafeMutableBufferPointer { out in
                    for r in 0..<out.count { out[r] = VectorMath.dot(m.baseAddress! + r * n, v.baseAddress!, n) }
                }
            }
        }
    }
}

/// The `capacity` items with the smallest keys seen (a bottom-k sample when keys are random):
/// memory stays at `capacity` however many items pass.
struct BottomK<Item> {
    let capacity: Int
    /// A max-heap on key.
    private var heap: [(key: UInt64, item: Item)] = []

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { heap.count }

    /// Whether an item with `key` would be kept (to skip building items that would not).
    func admits(_ key: UInt64) -> Bool {
        heap.count < capacity || (capacity > 0 && key < heap[0].key)
    }

    mutating func insert(_ item: Item, key: UInt64) {
        guard admits(key) else { return }
        if heap.count < capacity {
            heap.append((key, item))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].key > heap[parent].key else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        } else {
            heap[0] = (key, item)
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var largest = parent
                if left < heap.count, heap[left].key > heap[largest].key { largest = left }
                if right < heap.count, heap[right].key > heap[largest].key { largest = right }
                guard largest != parent else { break }
                heap.swapAt(parent, largest)
                parent = largest
            }
        }
    }

    /// The kept items, smallest key first.
    var items: [Item] {
        heap.sorted { $0.key < $1.key }.map(\.item)
    }
}

/// The `capacity` items with the lowest scores seen.
struct LowestK<Item> {
    let capacity: Int
    private var kept: BottomK<Item>

    init(capacity: Int) {
        self.capacity = capacity
        kept = BottomK(capacity: capacity)
    }

    /// Scores are similarities in [-1, 1] (or any finite Double); lower is kept.
    mutating func insert(_ item: Item, score: Double) {
        // An order-preserving map from Double to UInt64.
        let bits = score.bitPattern
        let key = score < 0 ? ~bits : bits | (1 << 63)
        kept.insert(item, key: key)
    }

    var items: [Item] { kept.items }
}

/// Mean and variance in one pass (Welford).
struct RunningStats {
    private(set) var count = 0
    private(set) var mean = 0.0
    private var m2 = 0.0
    private(set) var min = Double.infinity
    private(set) var max = -Double.infinity

    mutating func add(_ value: Double) {
        count += 1
        let delta = value - mean
        mean += delta / Double(count)
        m2 += delta * (value - mean)
        min = Swift.min(min, value)
        max = Swift.max(max, value)
    }

    var standardDeviation: Double { count > 1 ? (m2 / Double(count - 1)).squareRoot() : 0 }
}
