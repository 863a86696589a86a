import EmbedStarCore
import Foundation
import GRDB

/// Lexical search: SQLite's FTS5 (it ships in SQLite) over each repo's name, owner, full name,
/// description, topics and language, with the `porter unicode61` tokenizer (case folded,
/// punctuation splits `rust-serde-json`, English stems), ranked by FTS5's BM25 with the name
/// weighing most. One FTS row per repo row (`rowid` = `repo.seq`), written by triggers on the
/// repo table in the same transaction as the record, whoever writes it (a collector's
/// `INSERT OR REPLACE` deletes the old row without a delete trigger: the insert trigger before
/// it takes that row's words out). Any client writing the repo table needs an SQLite with FTS5
/// and JSON (Debian's and most builds have both).
enum SQLiteLexical {
    /// The columns and what fills them from a row of `repo` (`NEW` or the table itself). A
    /// record that is not JSON gives no words from it (its full name and language still count):
    /// `json_extract` on it would fail the collector's write, and the migration on a database
    /// holding one.
    private static func values(_ row: String) -> String {
        func field(_ path: String) -> String {
            "CASE WHEN json_valid(\(row).record) THEN json_extract(\(row).record, '\(path)') END"
        }
        return """
            \(row).seq, \(field("$.name")), \(field("$.owner.login")), \(row).full_name,
            \(field("$.description")), \(field("$.topics")), \(row).language
            """
    }

    private static let columns = "rowid, name, owner, full_name, description, topics, language"

    static let migration = """
        CREATE VIRTUAL TABLE repo_words USING fts5(name, owner, full_name, description, topics, language, tokenize = 'porter unicode61');
        CREATE TRIGGER repo_words_insert AFTER INSERT ON repo BEGIN
          INSERT INTO repo_words (\(columns)) VALUES (\(values("NEW")));
        END;
        CREATE TRIGGER repo_words_update AFTER UPDATE OF record, full_name, language ON repo BEGIN
          DELETE FROM repo_words WHERE rowid = OLD.seq;
          INSERT INTO repo_words (\(columns)) VALUES (\(values("NEW")));
        END;
        CREATE TRIGGER repo_words_delete AFTER DELETE ON repo BEGIN
          DELETE FROM repo_words WHERE rowid = OLD.seq;
        END;
        CREATE TRIGGER repo_words_replace BEFORE INSERT ON repo BEGIN
          DELETE FROM repo_words WHERE rowid IN (SELECT seq FROM repo WHERE id = NEW.id OR seq = NEW.seq);
        END;
        INSERT INTO repo_words (\(columns)) SELECT \(values("repo")) FROM repo;
        """

    /// The query as FTS5 expressions: each word quoted (no operator or column name a user types
    /// is read as syntax); a word with case changes also as its parts (``Words/queryTerms(_:)``).
    /// `all` asks for repos with every word (a word or its parts), `any` for repos with one.
    static func expressions(_ query: String) -> (all: String, any: String, words: Int)? {
        func quoted(_ term: String) -> String { "\"\(term.replacingOccurrences(of: "\"", with: "\"\""))\"" }
        let terms = Words.queryTerms(query)
        guard !terms.isEmpty else { return nil }
        let kept = Set(terms)
        // One group per word the user typed: the word whole, or its parts.
        var groups: [[String]] = []
        for typed in query.split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            let word = typed.lowercased()
            guard kept.contains(word) else { continue }
            let group = [word] + Words.plain(String(typed)).filter { $0 != word && kept.contains($0) }
            if !groups.contains(group) { groups.append(group) }
        }
        if groups.isEmpty { groups = terms.map { [$0] } }
        let all = groups.map { "(" + $0.map(quoted).joined(separator: " OR ") + ")" }.joined(separator: " AND ")
        return (all, terms.map(quoted).joined(separator: " OR "), groups.count)
    }

    /// Column weights for `bm25()`, in the table's column order: the name counts most.
    static let weights = "3.0, 1.0, 2.0, 1.0, 2.0, 1.0"
}

extension SQLiteStore {
    /// Repos with every word of the query first, then (when they are fewer than `limit`) repos
    /// with any: ranking only the repos with every word is what keeps a query of common words
    /// fast (at 300,000 repos, 487 rows ranked in 3 ms instead of 69,075 in 48 ms), and a repo
    /// with every word is the better answer anyway. Scores fall from the first tier to the second.
    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        guard limit > 0, let expressions = SQLiteLexical.expressions(query) else { return [] }
        let pool = try await database()
        let hits = try await ranked(expressions.all, limit: limit, language: filter.language, pool: pool)
        guard hits.count < limit, expressions.words > 1 else { return hits }
        let more = try await ranked(expressions.any, limit: limit + hits.count, language: filter.language, pool: pool)
        return SearchHit.tiered(hits, then: more, limit: limit)
    }

    /// Ready from migration 8 on (the triggers write the words in the repo write's own
    /// transaction, so none wait); `indexed` counts the FTS table's rows (its `docsize` table,
    /// one row per repo: a count of the table itself would read every document).
    public func lexicalStatus() async throws -> LexicalStatus {
        let indexed = try await database().read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM repo_words_docsize") ?? 0 }
        return LexicalStatus(state: .ready, indexed: indexed, waiting: 0)
    }

    /// The best `limit` matches of an FTS5 expression. Without a language the ranking runs in
    /// the FTS table alone and only the best rows' records are read; with one, the filter needs
    /// the repo row of every match.
    private func ranked(_ expression: String, limit: Int, language: String?, pool: DatabasePool) async throws -> [SearchHit] {
        var sql: String
        var arguments: StatementArguments = [expression]
        if let language {
            sql = """
                SELECT r.id, r.record, bm25(repo_words, \(SQLiteLexical.weights)) AS rank
                FROM repo_words JOIN repo r ON r.seq = repo_words.rowid
                WHERE repo_words MATCH ? AND r.language = ? COLLATE NOCASE ORDER BY rank, r.seq LIMIT ?
                """
            arguments += [language, limit]
        } else {
            sql = """
                SELECT r.id, r.record, best.rank FROM (
                  SELECT rowid, bm25(repo_words, \(SQLiteLexical.weights)) AS rank FROM repo_words
                  WHERE repo_words MATCH ? ORDER BY rank, rowid LIMIT ?
                ) best JOIN repo r ON r.seq = best.rowid ORDER BY best.rank, r.seq
                """
            arguments += [limit]
        }
        return try await pool.read { [sql, arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap { row -> SearchHit? in
                guard case .success(let repo) = Self.decodeRecord(row["record"], id: row["id"]) else { return nil }
                return SearchHit(repo: repo, score: -(row["rank"] as Double))  // bm25() is lower for better
            }
        }
    }
}
