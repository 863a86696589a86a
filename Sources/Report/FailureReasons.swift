import Foundation

/// Groups repos by why their last attempt failed. Reasons carry ids, counts and quoted values
/// that differ from repo to repo; with those replaced, one cause is one group.
public struct FailureReasons {
    private struct Group {
        var example: String
        var count = 0
        var failed = 0
        var retrying = 0
        var maxAttempts = 0
        var repos: [String] = []
    }

    private var groups: [String: Group] = [:]
    /// Example repos kept per group.
    let examples: Int

    init(examples: Int = 5) {
        self.examples = examples
    }

    private static let patterns: [(NSRegularExpression, String)] = [
        (#""[^"]*"|'[^']*'|`[^`]*`|“[^”]*”"#, "…"),  // quoted values
        (#"\b[a-z][a-z0-9_]*:(⟨[^⟩]*⟩|[A-Za-z0-9_\-./]+)"#, "<id>"),  // record ids (repo:abc)
        (#"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"#, "<id>"),  // uuids
        (#"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"#, "<id>"),  // hex ids
        (#"\d+(\.\d+)?"#, "#"),  // numbers
        (#"\s+"#, " "),
    ].map { (try! NSRegularExpression(pattern: $0.0), $0.1) }  // literals: they compile

    /// `reason` with what varies per repo replaced.
    public static func normalize(_ reason: String) -> String {
        var text = reason
        for (pattern, replacement) in patterns {
            text = pattern.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: replacement)
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    mutating func add(_ stored: StoredRepoSummary) {
        let key = Self.normalize(stored.reason)
        var group = groups[key] ?? Group(example: stored.reason)
        group.count += 1
        if stored.failed { group.failed += 1 } else { group.retrying += 1 }
        group.maxAttempts = max(group.maxAttempts, stored.attempts)
        if group.repos.count < examples { group.repos.append(stored.name) }
        groups[key] = group
    }

    /// Largest first.
    var sorted: [Report.FailureGroup] {
        groups.map { key, group in
            Report.FailureGroup(reason: key, example: group.example, count: group.count, failed: group.failed, retrying: group.retrying,
                                maxAttempts: group.maxAttempts, repos: group.repos)
        }.sorted { ($0.count, $1.reason) > ($1.count, $0.reason) }
    }
}

/// What a failure group needs of a repo.
struct StoredRepoSummary {
    var name: String
    var reason: String
    var failed: Bool
    var attempts: Int
}
