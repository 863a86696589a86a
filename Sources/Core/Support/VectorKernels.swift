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

    /// The dot product of `count` signed bytes at `a` and `b`, exact in 32-bit integers (a
    /// product is at most 127 * 128; the sum of 2^17 of them fits). Each step widens 16 bytes to
    /// 16-bit lanes, multiplies, and adds pairs into 32-bit lanes, which the baseline x86-64
    /// target has one instruction for (`pmaddwd`).
    @inlinable @inline(__always)
    public static func dot(int8 a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Int32 {
        var lanes = SIMD8<Int32>()
        var i = 0
        while i + 16 <= count {
            let x = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(fromByteOffset: i, as: SIMD16<Int8>.self))
            let y = SIMD16<Int16>(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: i, as: SIMD16<Int8>.self))
            let products = x &* y
            lanes &+= SIMD8<Int32>(truncatingIfNeeded: products.evenHalf) &+ SIMD8<Int32>(truncatingIfNeeded: products.oddHalf)
            i += 16
        }
        var sum = lanes.wrappedSum()
        while i < count {
            sum &+= Int32(a.load(fromByteOffset: i, as: Int8.self)) &* Int32(b.load(fromByteOffset: i, as: Int8.self))
            i += 1
        }
        return sum
    }
}
