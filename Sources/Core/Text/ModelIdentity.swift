import Crypto

/// Names the model that made a vector: provider, model and dimensions. A repo whose vector came
/// from another identity is pending again.
public enum ModelIdentity {
    /// `provider/model@dimensions`, plus a short digest of the task prefixes when there are any:
    /// other prefixes make other vectors, so repos embedded with other prefixes are pending. A
    /// text template other than the default adds its digest too: a changed template is handled
    /// like a model change (every repo re-embedded, at the re-embed pace, newest instance first),
    /// while deployments on the default template keep their identity.
    public static func make(provider: String, model: ModelInfo, prefixes: TaskPrefixes = .none, template: String = TextBuilder.defaultTemplate) -> String {
        var identity = "\(provider)/\(model.name)"
        if let dimensions = model.dimensions { identity += "@\(dimensions)" }
        if prefixes != .none {
            identity += "+p" + ContentHash.make(text: prefixes.query + "\u{0}" + prefixes.document, model: "prefixes").prefix(8)
        }
        if template != TextBuilder.defaultTemplate {
            identity += "+t" + ContentHash.make(text: template, model: "template").prefix(8)
        }
        return identity
    }
}
