/// Dot products over contiguous little-endian `Float`s, eight lanes at a time, read in place
/// (unaligned, so a database blob needs no copy): the SQLite store's search scan and the report.
public enum VectorKernels {
    /// The dot product of `count` floats at `a` and `b`.
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Float {
        var lanes = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let x = a.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let y = b.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            // Not `addProduct`: a fused multiply-add is a libm call per lane on the baseline x86-64
            // target (no FMA instruction), many times slower than a multiply and an add.
            lanes += x * y
            i += 8
        }
        var sum = lanes.sum()
        while i < count {
            sum += a.loadUnaligned(fromByteOffset: i * 4, as: Float.self) * b.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
            i += 1
        }
        return sum
    }

    /// The dot product of `query` and `vector` and the squared length of `vector`, in one pass.
    @inlinable @inline(__always)
    public static func dotAndSquaredLength(_ query: UnsafeRawPointer, _ vector: UnsafeRawPointer, count: Int) -> (dot: Float, squaredLength: Float) {
        var dots = SIMD8<Float>(), squares = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let q = query.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let v = vector.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            dots += q * v
            squares += v * v
            i += 8
        }
        var dot = dots.sum(), squared = squares.sum()
        while i < count {
            let q = query.loadUnaligned(fromByteOffset: i * 4, as: Float.self), v = vector.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
            dot += q * v
            squared += v * v
            i += 1
        }
        return (dot, squared)
    }

    /// The dot product of `count` signed bytes at `a` and `b`, exact in 32-bit integers. Eight
    /// bytes a step, widened to 32-bit lanes (70-100 ns for 384 bytes on the baseline x86-64
    /// target, measured against 100-150 ns for a plain loop or 16-lane steps).
    @inlinable @inline(__always)
    public static func dot(int8 a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Int32 {
        var lanes = SIMD4<Int32>()
        var i = 0
        while i + 8 <= count {
            let x = SIMD8<Int32>(truncatingIfNeeded: a.loadUnaligned(fromByteOffset: i, as: SIMD8<Int8>.self))
            let y = SIMD8<Int32>(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: i, as: SIMD8<Int8>.self))
            let products = x &* y
            lanes &+= products.lowHalf &+ products.highHalf
            i += 8
        }
        var sum = lanes.wrappedSum()
        while i < count {
            sum &+= Int32(a.load(fromByteOffset: i, as: Int8.self)) &* Int32(b.load(fromByteOffset: i, as: Int8.self))
            i += 1
        }
        return sum
    }
}
