import ArgumentParser
import Foundation
import SurrealClient

/// How fast vectors go to and from CBOR (for bench/ scripts).
struct BenchCBORCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cbor",
        abstract: "Measure CBOR encoding and decoding of vectors."
    )

    @Option(name: .long, help: "Vectors per measurement.")
    var count = 2000

    func run() async throws {
        for dimensions in [384, 1536, 3072] {
            let vectors = (0..<count).map { index in (0..<dimensions).map { Float(($0 + index) % 997) / 997 } }
            // A write-back as the store sends it: one object per repo with its vector.
            let message = SurrealValue.array(vectors.map { .object(["id": .string("repo:x"), "embedding": .floats($0)]) })
            var started = ContinuousClock.now
            let bytes = CBOR.encode(message)
            let encode = (ContinuousClock.now - started).seconds
            started = ContinuousClock.now
            let decoded = try CBOR.decode(bytes)
            var floats = 0
            for item in decoded.array ?? [] { floats += item["embedding"]?.floatArray?.count ?? 0 }
            let decode = (ContinuousClock.now - started).seconds
            guard floats == count * dimensions else { throw ValidationError("decoded \(floats) values") }
            let megabytes = Double(bytes.count) / 1_048_576
            print(String(format: "%4d dims: %d vectors, %.1f MB; encode %.0f vectors/s (%.0f MB/s), decode to [Float] %.0f vectors/s (%.0f MB/s)",
                         dimensions, count, megabytes, Double(count) / encode, megabytes / encode, Double(count) / decode, megabytes / decode))
        }
    }
}
