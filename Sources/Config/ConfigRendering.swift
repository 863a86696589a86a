/// Writes the effective configuration back as YAML for `embed-star config`, with secrets hidden.
public enum ConfigRendering {
    private static let secretWords = ["key", "pass", "secret", "token", "credential", "authorization"]

    /// True for keys whose values must never be shown: API keys, passwords, tokens.
    public static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return secretWords.contains { lowered.contains($0) } && lowered != "max_input_tokens" && !lowered.hasSuffix("_tokens")
    }

    /// `tree` as YAML with secrets redacted, after an optional `# comment` line.
    public static func render(_ tree: ConfigNode, comment: String? = nil) -> String {
        var lines: [String] = []
        if let comment { lines.append("# \(comment)") }
        emit(tree, indent: 0, secret: false, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func emit(_ node: ConfigNode, indent: Int, secret: Bool, into lines: inout [String]) {
        let pad = String(repeating: "  ", count: indent)
        switch node.value {
        case .mapping(let entries):
            for entry in entries {
                let isSecret = secret || isSecret(entry.key)
                switch entry.value.value {
                case .mapping(let children) where !children.isEmpty:
                    lines.append("\(pad)\(entry.key):")
                    emit(entry.value, indent: indent + 1, secret: isSecret, into: &lines)
                case .sequence(let items) where !items.isEmpty && !isSecret:
                    lines.append("\(pad)\(entry.key):")
                    emit(entry.value, indent: indent + 1, secret: isSecret, into: &lines)
                default:
                    lines.append("\(pad)\(entry.key): \(scalar(entry.value, secret: isSecret))")
                }
            }
        case .sequence(let items):
            for item in items { lines.append("\(pad)- \(scalar(item, secret: secret))") }
        default:
            lines.append(pad + scalar(node, secret: secret))
        }
    }

    private static func scalar(_ node: ConfigNode, secret: Bool) -> String {
        switch node.value {
        case .null: return "null"
        case .missingVariable(let name): return "null  # ${\(name)} is not set"
        case .mapping: return "{}"
        case .sequence: return secret ? "\"<redacted>\"" : "[]"
        case .scalar(let text, let quoted):
            if secret { return text.isEmpty ? "\"\"" : "\"<redacted>\"" }
            let shown = redactURLPassword(text)
            let plain = shown.allSatisfy { $0.isLetter || $0.isNumber || "-_./:@".contains($0) } && !shown.isEmpty
            if plain && !quoted { return shown }
            let escaped = shown.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\"\(escaped)\""
        }
    }

    /// `text` with the password of every URL in it taken out, word by word (an error message
    /// may name the URL it could not reach).
    public static func redactURLPasswords(in text: String) -> String {
        text.split(separator: " ", omittingEmptySubsequences: false).map { redactURLPassword(String($0)) }.joined(separator: " ")
    }

    /// `scheme://user:secret@host` shows as `scheme://user:<redacted>@host`.
    public static func redactURLPassword(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return text }
        let userInfo = text[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "<redacted>" + String(text[at...])
    }
}
