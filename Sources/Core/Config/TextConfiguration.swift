import Foundation

/// How the embedded text is built (`text:`).
public struct TextConfiguration: Decodable, Sendable, Hashable {
    public var template = TextBuilder.defaultTemplate
    /// A cap on tokens per text below the model's own limit.
    public var maxTokens: Int?
    /// Put before every document text; `nil` for the model's known default (``TaskPrefixes``).
    public var documentPrefix: String?
    /// Put before every search query; `nil` for the model's known default.
    public var queryPrefix: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case template, maxTokens = "max_tokens", documentPrefix = "document_prefix", queryPrefix = "query_prefix"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        template = try c.decodeIfPresent(String.self, forKey: .template) ?? TextBuilder.defaultTemplate
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        // A quoted empty string switches a default prefix off; null keeps the default.
        documentPrefix = try c.decodeIfPresent(String.self, forKey: .documentPrefix)
        queryPrefix = try c.decodeIfPresent(String.self, forKey: .queryPrefix)
    }

    public func prefixes(model: ModelInfo) -> TaskPrefixes {
        TaskPrefixes.resolve(model: model, query: queryPrefix, document: documentPrefix)
    }
}
