import EmbedStarConfig

/// Builds the text embedded for a repo from a template, and cuts it to the model's token budget.
///
/// A template is plain text with `{field}` placeholders: `full_name`, `name`, `owner`,
/// `description`, `language`, `topics`, `url`, `stars`. A line whose placeholders are all empty
/// is dropped, so a repo without a description leaves no dangling "Description:" behind. The
/// default leaves out star counts on purpose: a star changes nothing about what a repo is, and
/// must not cost a new embedding.
public struct TextBuilder: Sendable {
    public static let defaultTemplate = """
        {full_name}
        {description}
        Language: {language}
        Topics: {topics}
        Owner: {owner}
        """

    public static let fields = ["full_name", "name", "owner", "description", "language", "topics", "url", "stars"]

    private enum Piece: Sendable {
        case literal(String)
        case field(String)
    }

    private let lines: [[Piece]]
    /// Tokens a text may cost; `nil` for no limit.
    public var maxTokens: Int?

    /// Parses `template`; an unknown `{field}` is an error that lists the known ones.
    public init(template: String = TextBuilder.defaultTemplate, maxTokens: Int? = nil) throws(ConfigError) {
        var parsed: [[Piece]] = []
        for line in template.split(separator: "\n", omittingEmptySubsequences: false) {
            var pieces: [Piece] = []
            var rest = Substring(line)
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                if open > rest.startIndex { pieces.append(.literal(String(rest[..<open]))) }
                let name = String(rest[rest.index(after: open)..<close]).trimmingCharacters(in: .whitespaces)
                guard Self.fields.contains(name) else {
                    var message = "unknown field '{\(name)}' in template"
                    if let guess = closestMatch(to: name, in: Self.fields) { message += "; did you mean '{\(guess)}'?" }
                    throw ConfigError(location: nil, path: "text.template", message: message + " (fields: \(Self.fields.joined(separator: ", ")))")
                }
                pieces.append(.field(name))
                rest = rest[rest.index(after: close)...]
            }
            if !rest.isEmpty { pieces.append(.literal(String(rest))) }
            parsed.append(pieces)
        }
        lines = parsed
        self.maxTokens = maxTokens
    }

    /// The text for `repo`, cut to `maxTokens` measured by `tokenCount`.
    public func text(for repo: Repo, tokenCount: (String) -> Int = TokenEstimator.estimate) -> String {
        measuredText(for: repo, tokenCount: tokenCount).text
    }

    /// The text for `repo`, cut to `maxTokens`, with its cost by `tokenCount`: the measurement
    /// the cut made, so a text is counted once (the pipeline batches and rate-limits by it).
    public func measuredText(for repo: Repo, tokenCount: (String) -> Int = TokenEstimator.estimate) -> (text: String, tokens: Int) {
        var output: [String] = []
        for line in lines {
            var rendered = ""
            var sawField = false
            var sawValue = false
            for piece in line {
                switch piece {
                case .literal(let text):
                    rendered += text
                case .field(let name):
                    sawField = true
                    let value = Self.value(name, of: repo)
                    if !value.isEmpty { sawValue = true }
                    rendered += value
                }
            }
            if sawField && !sawValue { continue }
            let trimmed = rendered.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { output.append(trimmed) }
        }
        let text = output.joined(separator: "\n")
        guard let maxTokens else { return (text, text.isEmpty ? 0 : tokenCount(text)) }
        return Self.truncateMeasured(text, toTokens: maxTokens, tokenCount: tokenCount)
    }

    private static func value(_ field: String, of repo: Repo) -> String {
        let raw: String
        switch field {
        case "full_name": raw = repo.fullName
        case "name": raw = repo.name
        case "owner": raw = repo.owner?.login ?? ""
        case "description": raw = repo.description ?? ""
        case "language": raw = repo.language ?? ""
        case "topics": raw = repo.topics.joined(separator: ", ")
        case "url": raw = repo.url ?? ""
        case "stars": raw = String(repo.stars)
        default: raw = ""
        }
        // A value must not add lines of its own: that would break the line-dropping rule.
        return raw.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    /// The longest prefix of `text` that ends at a word boundary and costs at most `budget`
    /// tokens. Cuts work on whole characters, never inside a UTF-8 sequence or grapheme. A single
    /// word longer than the budget is cut by character.
    public static func truncate(_ text: String, toTokens budget: Int, tokenCount: (String) -> Int = TokenEstimator.estimate) -> String {
        truncateMeasured(text, toTokens: budget, tokenCount: tokenCount).text
    }

    /// ``truncate(_:toTokens:tokenCount:)`` with the cost of what it kept, as it measured it.
    static func truncateMeasured(_ text: String, toTokens budget: Int, tokenCount: (String) -> Int) -> (text: String, tokens: Int) {
        guard budget > 0, !text.isEmpty else { return ("", 0) }
        let whole = tokenCount(text)
        if whole <= budget { return (text, whole) }
        // Word ends, as indices after each word.
        var boundaries: [String.Index] = []
        var index = text.startIndex
        var inWord = false
        while index < text.endIndex {
            let isSpace = text[index].isWhitespace
            if inWord && isSpace { boundaries.append(index) }
            inWord = !isSpace
            index = text.index(after: index)
        }
        // Binary search for the last boundary that fits: cost grows with the prefix.
        var low = 0, high = boundaries.count - 1, best: (index: String.Index, tokens: Int)?
        while low <= high {
            let mid = (low + high) / 2
            let cost = tokenCount(String(text[..<boundaries[mid]]))
            if cost <= budget {
                best = (boundaries[mid], cost)
                low = mid + 1
            } else {
                high = mid - 1
            }
        }
        if let best { return (String(text[..<best.index]), best.tokens) }
        // Not even the first word fits: cut it by character.
        var characters = 0
        var count = text.count
        var lowCount = 0, lowTokens = 0
        while lowCount < count {
            characters = (lowCount + count + 1) / 2
            let cost = tokenCount(String(text.prefix(characters)))
            if cost <= budget { lowCount = characters; lowTokens = cost } else { count = characters - 1 }
        }
        return (String(text.prefix(lowCount)), lowTokens)
    }
}
