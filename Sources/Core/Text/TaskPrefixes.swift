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

    /// The prefixes for `model` served by `provider`, unless configured. Only models whose
    /// serving path does not add them itself get defaults: Ollama's nomic-embed-text, and
    /// Together's e5-instruct and bge models. The `local` provider's engine adds e5's own.
    public static func resolve(provider: String, model: String, query: String?, document: String?) -> TaskPrefixes {
        let defaults = known(provider: provider, model: model.lowercased())
        return TaskPrefixes(query: query ?? defaults.query, document: document ?? defaults.document)
    }

    static func known(provider: String, model: String) -> TaskPrefixes {
        switch provider {
        case "ollama" where model.hasPrefix("nomic-embed-text"):
            return TaskPrefixes(query: "search_query: ", document: "search_document: ")
        case "together" where model.contains("e5-large-instruct"):
            return TaskPrefixes(query: "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ", document: "")
        case "together" where model.contains("bge-") && model.contains("-en"):
            return TaskPrefixes(query: "Represent this sentence for searching relevant passages: ", document: "")
        default:
            return .none
        }
    }
}
