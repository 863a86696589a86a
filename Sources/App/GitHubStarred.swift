import EmbedStarCore
import Foundation

/// Reads what GitHub's API returns for starred repositories (`gh api --paginate user/starred`):
/// one JSON array, several arrays back to back (what `--paginate` prints), one repository object
/// per line (NDJSON, what `jq -c '.[]'` prints), or the `application/vnd.github.star+json` shape
/// (`{starred_at, repo}`). Each repo becomes a record `repo:<github id>`; entries that cannot be
/// read are reported, the rest are kept. `gh api --paginate --slurp` output (an array of pages)
/// is read page by page. A file with no JSON at all, text that is not JSON between the
/// documents, or an object that is no repository (GitHub's `{"message": ...}` error) is an error
/// that says where; an empty array is an empty list of stars.
public enum GitHubStarred {
    public static func parse(_ data: Data, source: String) throws -> (repos: [Repo], rejected: [RecordError]) {
        var repos: [Repo] = []
        var rejected: [RecordError] = []
        var position = 0
        let documents = try documents(in: data, source: source)
        guard !documents.isEmpty else {
            throw RecordError(record: source, field: nil, problem: "holds no repositories (expected a JSON array, or one repository object per line)")
        }
        for document in documents {
            let entries: [JSONValue]
            switch document {
            case .array(let items):
                // `--slurp` puts the pages in one array: an array of arrays is read page by page.
                let pages = items.compactMap { item -> [JSONValue]? in
                    if case .array(let page) = item { return page }
                    return nil
                }
                entries = !items.isEmpty && pages.count == items.count ? pages.flatMap { $0 } : items
            case .object(let fields) where fields["id"] != nil || fields["repo"] != nil: entries = [document]
            case .object(let fields):
                let said: String? = if case .string(let text)? = fields["message"] { text } else { nil }
                throw RecordError(record: source, field: nil, problem: said.map { "is GitHub's error answer, not repositories: \($0)" }
                    ?? "expected a JSON array of repositories or one repository per line, got an object with keys \(fields.keys.sorted().prefix(5).joined(separator: ", "))")
            default:
                throw RecordError(record: source, field: nil, problem: "expected a JSON array of repositories, got \(document.typeName)")
            }
            for entry in entries {
                defer { position += 1 }
                switch repo(from: entry, name: "#\(position) of \(source)") {
                case .success(let repo): repos.append(repo)
                case .failure(let error): rejected.append(error)
                }
            }
        }
        return (repos, rejected)
    }

    static func repo(from entry: JSONValue, name: String) -> Result<Repo, RecordError> {
        var value = entry
        if case .object(let fields) = entry, case .object? = fields["repo"] { value = fields["repo"]! }  // the star+json shape, checked just above
        guard case .object(let fields) = value else {
            return .failure(RecordError(record: name, field: nil, problem: "expected an object, got \(value.typeName)"))
        }
        guard case .int(let githubID)? = fields["id"] else {
            return .failure(RecordError(record: name, field: "id", problem: "missing or not a number"))
        }
        // GitHub's names mapped onto the collector's, then read with the same lenient rules.
        var record: [String: JSONValue] = ["id": .string("repo:\(githubID)"), "github_id": .int(githubID)]
        let renames = ["full_name": "full_name", "name": "name", "description": "description", "html_url": "url",
                       "stargazers_count": "stars", "language": "language", "private": "is_private", "topics": "topics",
                       "created_at": "created_at", "updated_at": "updated_at"]
        for (from, to) in renames { if let field = fields[from] { record[to] = field } }
        if case .object(let owner)? = fields["owner"] {
            var kept: [String: JSONValue] = [:]
            if let login = owner["login"] { kept["login"] = login }
            if let avatar = owner["avatar_url"] { kept["avatar_url"] = avatar }
            record["owner"] = .object(kept)
        }
        return Repo.decode(.object(record), fallbackName: "\(name) (github id \(githubID))")
    }

    /// The JSON documents in `data`, which may be several back to back.
    static func documents(in data: Data, source: String) throws -> [JSONValue] {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            throw RecordError(record: source, field: nil, problem: "is UTF-16 text (Windows PowerShell's '>' writes it): save it as UTF-8")
        }
        // A UTF-8 byte order mark (Notepad, PowerShell's Out-File): skipped, positions still count it.
        let skipped = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        bytes.removeFirst(skipped)
        var documents: [JSONValue] = []
        var start: Int?
        var depth = 0
        var inString = false
        var escaped = false
        for (index, byte) in bytes.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\"") where depth == 0:
                throw RecordError(record: source, field: nil, problem: "is not JSON: text outside an array or object at byte \(index + skipped)")
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                if depth == 0 { start = index }
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 0, let begin = start {
                    do {
                        documents.append(try JSONDecoder().decode(JSONValue.self, from: Data(bytes[begin...index])))
                    } catch {
                        throw RecordError(record: source, field: nil, problem: "not valid JSON near byte \(begin + skipped)")
                    }
                    start = nil
                }
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): break
            default:
                if depth == 0 {
                    throw RecordError(record: source, field: nil, problem: "is not JSON: text outside an array or object at byte \(index + skipped)")
                }
            }
        }
        guard depth == 0, !inString else { throw RecordError(record: source, field: nil, problem: "the JSON ends in the middle of a value") }
        return documents
    }
}
