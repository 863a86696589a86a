import EmbedStarConfig

/// What is embedded for a repo, and the hash stored with its vector: the template's text, cut to
/// the model's token budget, after the model's document prefix. The pipeline sends it; `report`
/// computes it again to find vectors whose repo has changed since.
public struct DocumentText: Sendable {
    public let prefixes: TaskPrefixes
    /// The ``ModelIdentity`` the vectors are stored under.
    public let modelIdentity: String
    private let builder: TextBuilder
    /// What the document prefix costs, counted once by the provider's counter.
    private let prefixTokens: Int

    /// - Parameter tokenCount: the provider's token counter (``EmbeddingProvider/tokenCount(_:)``):
    ///   the prefix is paid from the model's budget at the price the texts are measured at.
    public init(providerName: String, model: ModelInfo, text: TextConfiguration,
                tokenCount: (String) -> Int = TokenEstimator.estimate) throws(ConfigError) {
        prefixes = text.prefixes(model: model)
        if model.prefixesFixed {
            for (key, configured, fixed) in [("text.document_prefix", prefixes.document, model.prefixes.document),
                                             ("text.query_prefix", prefixes.query, model.prefixes.query)] where configured != fixed {
                throw ConfigError(location: nil, path: key, message: "the \(providerName) provider's model always gets '\(fixed)' before the text (its engine adds it); remove the setting or set it to '\(fixed)', got '\(configured)'")
            }
        }
        modelIdentity = ModelIdentity.make(provider: providerName, model: model, prefixes: prefixes, template: text.template)
        // The prefix costs tokens too: the text gets what is left of the budget.
        let prefixCost = prefixes.document.isEmpty ? 0 : tokenCount(prefixes.document)
        prefixTokens = prefixCost
        let budget = [model.maxInputTokens, text.maxTokens].compactMap { $0 }.min().map { max(1, $0 - prefixCost) }
        builder = try TextBuilder(template: text.template, maxTokens: budget)
    }

    /// The text sent for `repo`; empty when the template gives nothing.
    public func text(for repo: Repo, tokenCount: (String) -> Int = TokenEstimator.estimate) -> String {
        measuredText(for: repo, tokenCount: tokenCount).text
    }

    /// The text sent for `repo` and what it costs: the template's text as the cut measured it
    /// (`tokenCount` runs once per text, not again to batch it and again to rate-limit it), plus
    /// the prefix's cost counted when this was built (pass the same counter to both).
    public func measuredText(for repo: Repo, tokenCount: (String) -> Int = TokenEstimator.estimate) -> (text: String, tokens: Int) {
        let built = builder.measuredText(for: repo, tokenCount: tokenCount)
        return built.text.isEmpty ? ("", 0) : (prefixes.document + built.text, prefixTokens + built.tokens)
    }

    /// What is embedded for a search query: the model's query prefix and the query (`search`,
    /// the report's self-retrieval). The one place the query prefix is applied.
    public func query(_ text: String) -> String {
        prefixes.query + text
    }

    /// The hash stored with the vector of `text`.
    public func hash(_ text: String) -> String {
        ContentHash.make(text: text, model: modelIdentity)
    }
}
