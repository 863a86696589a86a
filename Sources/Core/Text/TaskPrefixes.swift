/// The task prefixes some embedding models need to retrieve well: a query and a document are
/// embedded differently. The prefix is part of the embedded (and hashed) text, so switching it
/// re-embeds.
public struct TaskPrefixes: Sendable, Hashable {
    public var query: String
    public var document: String

    public init(query: String, document: String) {
        self.query = query
        self.document = document
    }

    public static let none = TaskPrefixes(query: "", document: "")

    /// The configured prefixes, or the model's own (``ModelInfo/prefixes``, what its provider
    /// knows it needs) where none is configured; an empty string switches a default off.
    public static func resolve(model: ModelInfo, query: String?, document: String?) -> TaskPrefixes {
        TaskPrefixes(query: query ?? model.prefixes.query, document: document ?? model.prefixes.document)
    }
}
