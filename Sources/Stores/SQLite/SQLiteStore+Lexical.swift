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

    /// Column weights for `bm25()`, in the table's column order: the name counts most.
    static let weights = "3.0, 1.0, 2.0, 1.0, 2.0, 1.0"

    /// The query as an FTS5 expression: each word quoted (no operator or column name a user
    /// types is read as syntax), any of them may match; a word with case changes also as its
    /// parts (``Words/queryTerms(_:)``).
    static func expression(_ query: String) -> String? {
        let words = Words.queryTerms(query)
        guard !words.isEmpty else { return nil }
        return words.map { "\"\($0.replacingOccurrences(of: "\"", with: "\"\""))\"" }.joined(separator: " OR ")
    }
}

extension SQLiteStore {
    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        guard limit > 0, let expression = SQLiteLexical.expression(query) else { return [] }
        let pool = try await database()
        // Without a language the ranking runs in the FTS table alone and only the best rows'
        // records are read; with one, the filter needs the repo row of every match.
        var sql: String
        var arguments: StatementArguments = [expression]
        if let language = filter.language {
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
