import EmbedStarCore
import Testing

/// The SIMD kernels against plain loops in wider arithmetic, at lengths that leave a remainder
/// after the vector steps, and at the ends of the value range.
@Suite struct VectorKernelTests {
    @Test(arguments: [0, 1, 7, 8, 9, 16, 383, 384, 1_536])
    func theByteDotProductIsExact(_ count: Int) {
        var random = SystemRandomNumberGenerator()
        var a = (0..<count).map { _ in Int8.random(in: .min ... .max, using: &random) }
        let b = (0..<count).map { _ in Int8.random(in: .min ... .max, using: &random) }
        if count > 0 { a[0] = .min }  // -128 * -128 and -128 * 127 stay exact
        let expected = zip(a, b).reduce(Int64(0)) { $0 + Int64($1.0) * Int64($1.1) }
        let dot = a.withUnsafeBytes { x in b.withUnsafeBytes { y in VectorKernels.dot(int8: x.baseAddress!, y.baseAddress!, count: count) } }
        #expect(Int64(dot) == expected)
    }

    @Test(arguments: [1, 7, 8, 9, 384])
    func theFloatDotProductsMatchAPlainLoop(_ count: Int) {
        let a = (0..<count).map { Float($0 % 13) / 7 - 0.9 }
        let b = (0..<count).map { Float($0 % 5) / 3 - 0.4 }
        let dot = a.withUnsafeBytes { x in b.withUnsafeBytes { y in VectorKernels.dot(x.baseAddress!, y.baseAddress!, count: count) } }
        let both = a.withUnsafeBytes { x in b.withUnsafeBytes { y in VectorKernels.dotAndSquaredLength(x.baseAddress!, y.baseAddress!, count: count) } }
        let expected = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let squared = b.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(Double(dot) - expected) < 1e-3 && abs(Double(both.dot) - expected) < 1e-3)
        #expect(abs(Double(both.squaredLength) - squared) < 1e-3)
    }
}
