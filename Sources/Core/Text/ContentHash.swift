import Crypto

/// The hash stored with a vector: SHA-256 over the model identity and the exact text sent, so
/// a repo whose text and model did not change is never sent to a provider again, and a changed
/// text or model always is.
public enum ContentHash {
    public static func make(text: String, model: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(model.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(text.utf8))
        return hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
