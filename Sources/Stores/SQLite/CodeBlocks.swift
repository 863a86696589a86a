import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite

/// Blocks of 256 consecutive repo `seq`s, the unit in which byte codes are packed for search
/// (`CodeFile`), and schema version 5.
///
/// Version 5 packed the codes in the database itself (`repo_code_block`, with `repo_code_stale`
/// listing the blocks to pack again). Since version 6 they are packed in the codes file; the
/// version-5 tables stay, emptied and kept up to date by their triggers, for a version-5
/// process still running during a rolling deploy.
enum CodeBlocks {
    /// 256 `seq`s a block.
    static let shift: Int64 = 8

    static func block(_ seq: Int64) -> Int64 { seq >> shift }
    static func firstSeq(_ block: Int64) -> Int64 { block << shift }

    /// Schema version 5.
    static let migration = """
        CREATE TABLE repo_code_block (
          block INTEGER NOT NULL,
          length INTEGER NOT NULL,
          seqs BLOB NOT NULL,
          codes BLOB NOT NULL,
          PRIMARY KEY (block, length)
        );
        CREATE TABLE repo_code_stale (block INTEGER PRIMARY KEY NOT NULL);
        CREATE TRIGGER repo_code_stale_insert AFTER INSERT ON repo_vector_code BEGIN
          INSERT OR IGNORE INTO repo_code_stale (block) VALUES (NEW.repo >> \(shift));
        END;
        CREATE TRIGGER repo_code_stale_update AFTER UPDATE ON repo_vector_code BEGIN
          INSERT OR IGNORE INTO repo_code_stale (block) VALUES (OLD.repo >> \(shift));
          INSERT OR IGNORE INTO repo_code_stale (block) VALUES (NEW.repo >> \(shift));
        END;
        CREATE TRIGGER repo_code_stale_delete AFTER DELETE ON repo_vector_code BEGIN
          INSERT OR IGNORE INTO repo_code_stale (block) VALUES (OLD.repo >> \(shift));
        END;
        INSERT OR IGNORE INTO repo_code_stale (block) SELECT DISTINCT repo >> \(shift) FROM repo_vector_code;
        """

    /// Runs `sql` and hands each row's raw statement to `row`.
    static func step(_ db: Database, sql: String, arguments: StatementArguments, _ row: (OpaquePointer) -> Void) throws {
        let statement = try db.cachedStatement(sql: sql)
        try statement.setArguments(arguments)
        let raw = statement.sqliteStatement
        while sqlite3_step(raw) == SQLITE_ROW { row(raw) }
        let result = sqlite3_reset(raw)
        guard result == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: result), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: sql)
        }
    }
}
