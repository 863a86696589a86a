/// A conservative token count for models whose tokenizer is not at hand.
///
/// Subword tokenizers spend about one token per four ASCII letters or digits, one per
/// punctuation mark, and one or more per non-ASCII character (CJK, emoji). Counting each word
/// as `ceil(letters / 4)`, each punctuation mark and each non-ASCII scalar as one, errs on the
/// high side, so a text cut to the estimate fits the real budget.
public enum TokenEstimator {
    public static func estimate(_ text: some StringProtocol) -> Int {
        var tokens = 0
        var wordLength = 0
        for scalar in text.unicodeScalars {
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                wordLength += 1
                continue
            }
            tokens += (wordLength + 3) / 4
            wordLength = 0
            if scalar.properties.isWhitespace { continue }
            tokens += 1
        }
        return tokens + (wordLength + 3) / 4
    }
}
