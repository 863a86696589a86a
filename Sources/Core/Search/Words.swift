/// Words of a text as lexical search compares them: lower case, split at anything that is not a
/// letter or a digit (so `rust-serde-json` and `serde_json` give `serde` and `json`), a lower
/// case letter followed by an upper case one splits too (`TomlParser` gives `toml`, `parser`),
/// and each word cut to a stem (`parsers`, `parsing` and `parsed` meet at `pars`).
///
/// The Mock store ranks with these. The SQLite store uses FTS5's `porter unicode61`, which splits
/// at punctuation and folds case but does not split at case changes and stems by Porter's rules
/// (`parsers` and `parser` meet, `parsing` does not); it is asked ``queryTerms(_:)``, a name
/// typed with capitals both whole and in parts, so `TomlKit` and `tomlkit` find each other. The
/// hybrid fusion uses ``plain(_:)`` to recognise a query that names a repo.
public enum Words {
    /// The words of `text`, unstemmed: lower case, split as described above.
    public static func plain(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var previousWasLower = false
        for character in text {
            if character.isLetter || character.isNumber {
                if character.isUppercase && previousWasLower && !current.isEmpty {
                    words.append(current)
                    current = ""
                }
                current += character.lowercased()
                previousWasLower = character.isLowercase || character.isNumber
            } else {
                if !current.isEmpty { words.append(current) }
                current = ""
                previousWasLower = false
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// English words too common to tell repos apart (`a`, `in`, `for`): left out of a query
    /// that has other words, as each matches most of the corpus and costs the engine a scan of
    /// its postings for nothing.
    public static let stopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "i", "in", "is", "it", "its", "me", "my",
        "need", "of", "on", "or", "that", "the", "this", "to", "was", "want", "which", "with", "written",
    ]

    /// The words of `text` split at punctuation only, and also at case changes (`TomlParser`
    /// gives `tomlparser`, `toml`, `parser`): what a query asks of an index whose tokenizer does
    /// not split at case (SQLite's `unicode61`), so it matches either way. Each word once, and
    /// without ``stopWords`` unless the query has nothing else.
    public static func queryTerms(_ text: String) -> [String] {
        var terms: [String] = []
        var seen: Set<String> = []
        let whole = text.split { !($0.isLetter || $0.isNumber) }.map { $0.lowercased() }
        for term in whole + plain(text) where seen.insert(term).inserted {
            terms.append(term)
        }
        return telling(terms)
    }

    /// `words` without ``stopWords``, unless nothing else is left (a query of stop words alone
    /// still asks for them).
    public static func telling(_ words: some Collection<String>) -> [String] {
        let telling = words.filter { !stopWords.contains($0) }
        return telling.isEmpty ? Array(words) : telling
    }

    /// The stems of `text`'s words, for ranking.
    public static func stems(_ text: String) -> [String] {
        plain(text).map(stem)
    }

    /// A light English stemmer (the common inflections; a word of three letters or fewer is
    /// kept as it is): plurals, `-ing`, `-ed`, `-er`, `-ly`, and a final `e`.
    public static func stem(_ word: String) -> String {
        guard word.count > 3, word.allSatisfy({ $0.isASCII && $0.isLetter }) else { return word }
        var stem = word
        func strip(_ suffix: String, keeping minimum: Int = 3, replace: String = "") -> Bool {
            guard stem.hasSuffix(suffix), stem.count - suffix.count >= minimum else { return false }
            stem = String(stem.dropLast(suffix.count)) + replace
            return true
        }
        if !strip("ies", replace: "y") && !strip("sses", replace: "ss") && !stem.hasSuffix("ss") {
            _ = strip("s")
        }
        _ = strip("ing") || strip("ed") || strip("er") || strip("ly")
        _ = strip("e")
        if stem.count > 3, let last = stem.last, stem.dropLast().last == last, !"lsz".contains(last) {
            stem.removeLast()  // running -> runn -> run
        }
        return stem
    }
}
