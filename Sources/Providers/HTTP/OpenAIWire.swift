import EmbedStarCore
import Foundation

/// The OpenAI embeddings wire format, spoken by OpenAI, Together AI and many compatible servers.
/// Pure functions: request in, bytes out; bytes in, vectors out.
public enum OpenAIWire {
    public enum EncodingFormat: String, Sendable, Decodable {
        case float
        case base64
    }

    struct Request: Encodable {
        var model: String
        var input: [String]
        var encoding_format: String?
        var dimensions: Int?
        var user: String?
    }

    public static func encodeRequest(model: String, input: [String], encoding: EncodingFormat?, dimensions: Int?, user: String?) throws -> Data {
        try JSONEncoder().encode(Request(model: model, input: input, encoding_format: encoding?.rawValue, dimensions: dimensions, user: user))
    }

    private struct Response: Decodable {
        struct Item: Decodable {
            var index: Int
            var embedding: Vector
        }

        var data: [Item]
    }

    /// Either a JSON array of numbers or base64 of little-endian float32.
    private struct Vector: Decodable {
        var values: [Float]

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                guard let bytes = Data(base64Encoded: text), bytes.count % 4 == 0 else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "embedding is not base64 of float32 values")
                }
                values = OpenAIWire.floats(littleEndian: bytes)
            } else {
                values = try container.decode([Float].self)
            }
        }
    }

    /// Float32 values from little-endian bytes.
    public static func floats(littleEndian bytes: Data) -> [Float] {
        let count = bytes.count / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                for index in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)
                    buffer[index] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
            initialized = count
        }
    }

    /// The vectors of an answer, in input order (by `index`, not by position). An answer with
    /// the wrong count, duplicate or out-of-range indices, or that is not the promised JSON is a
    /// retryable error: nothing of it is used.
    public static func decodeResponse(_ body: Data, expectedCount: Int, provider: String) throws -> [[Float]] {
        let response: Response
        do {
            response = try JSONDecoder().decode(Response.self, from: body)
        } catch {
            throw EmbeddingError(.retryable, "\(provider) sent an answer that is not an embeddings list (\(body.count) bytes): \(short(error))")
        }
        guard response.data.count == expectedCount else {
            throw EmbeddingError(.retryable, "\(provider) returned \(response.data.count) vectors for \(expectedCount) inputs")
        }
        var ordered = [[Float]?](repeating: nil, count: expectedCount)
        for item in response.data {
            guard ordered.indices.contains(item.index), ordered[item.index] == nil else {
                throw EmbeddingError(.retryable, "\(provider) returned a duplicate or out-of-range index \(item.index)")
            }
            ordered[item.index] = item.embedding.values
        }
        return ordered.map { $0! }  // every slot was filled exactly once above
    }

    static func short(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error { return context.debugDescription }
        if case DecodingError.keyNotFound(let key, _) = error { return "missing '\(key.stringValue)'" }
        if case DecodingError.typeMismatch(_, let context) = error {
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        }
        return String(String(describing: error).prefix(200))
    }
}
