import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite

/// The byte codes packed 256 to a row, so a search steps a few hundred rows instead of one per
/// vector (stepping rows, not scoring, was most of a scan: the `sqlite3` shell alone takes 40 ms
/// to read 100,000 one-code rows).
///
/// `repo_vector_code` stays the truth; a block is a copy of the codes of the repos whose `seq`
/// shifted right by `shift` is its number, one row per code length. Triggers on the code table
/// (plain SQL, so they fire in every version's connections) list a block as stale when one of
/// its codes is inserted, changed or removed, in the same transaction. A search scans the blocks
/// that are not stale, and the code rows of those that are; `pack` rebuilds stale blocks. The
/// store packs at start and whenever a claim finds the queue dry, so a backfill's blocks are
/// built once, when it ends, and a running fleet's after each quiet moment.
enum CodeBlocks {
    /// 256 codes a block: 99 KB at 384 dimensions.
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

    /// Whether any block waits to be packed (one lookup).
    static func anyStale(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM repo_code_stale)") ?? false
    }

    /// Rebuilds up to `limit` stale blocks from the code table; returns how many it rebuilt.
    @discardableResult
    static func pack(_ db: Database, limit: Int) throws -> Int {
        let stale = try Int64.fetchAll(db, sql: "SELECT block FROM repo_code_stale ORDER BY block LIMIT ?", arguments: [limit])
        let codes = try db.cachedStatement(sql: "SELECT repo, code FROM repo_vector_code WHERE repo >= ? AND repo < ? ORDER BY repo")
        let insert = try db.cachedStatement(sql: "INSERT INTO repo_code_block (block, length, seqs, codes) VALUES (?, ?, ?, ?)")
        for block in stale {
            try db.execute(sql: "DELETE FROM repo_code_block WHERE block = ?", arguments: [block])
            // Grouped by length: a model change can leave codes of two dimensions in one block.
            var groups: [Int: (seqs: Data, codes: Data)] = [:]
            let rows = try Row.fetchCursor(codes, arguments: [firstSeq(block), firstSeq(block + 1)])
            while let row = try rows.next() {
                let code: Data = row["code"]
                var seq = (row["repo"] as Int64).littleEndian
                groups[code.count, default: (Data(), Data())].seqs.append(Data(bytes: &seq, count: 8))
                groups[code.count]!.codes.append(code)
            }
            for (length, group) in groups {
                try insert.execute(arguments: [block, length, group.seqs, group.codes])
            }
            try db.execute(sql: "DELETE FROM repo_code_stale WHERE block = ?", arguments: [block])
        }
        return stale.count
    }

    /// Scores `code` against every code of its length in `blocks`: the packed blocks that are
    /// not stale, then the code rows of the stale ones. The best `kept`, and how many it scored.
    static func scan(_ db: Database, _ code: VectorCode?, kept: Int, blocks: Range<Int64>) throws -> (best: TopK, scored: Int) {
        var best = TopK(capacity: kept)
        var scored = 0
        guard let code else { return (best, 0) }
        let length = VectorCode.length(code.bytes.count)
        try code.bytes.withUnsafeBytes { q in
            let query = q.baseAddress!
            // Stepped through SQLite's C API, each blob read where SQLite holds it.
            try step(db, sql: """
                SELECT b.seqs, b.codes FROM repo_code_block b
                WHERE b.block >= ?1 AND b.block < ?2 AND b.length = ?3
                  AND NOT EXISTS (SELECT 1 FROM repo_code_stale s WHERE s.block = b.block)
                """, arguments: [blocks.lowerBound, blocks.upperBound, length]) { raw in
                let count = Int(sqlite3_column_bytes(raw, 0)) / 8
                // Both blobs stay where SQLite holds them until the next step.
                guard count > 0, Int(sqlite3_column_bytes(raw, 1)) == count * length,
                      let seqs = sqlite3_column_blob(raw, 0), let codes = sqlite3_column_blob(raw, 1) else { return }
                for index in 0..<count {
                    best.insert(score: code.score(query, codes + index * length),
                                seq: Int64(littleEndian: seqs.loadUnaligned(fromByteOffset: index * 8, as: Int64.self)))
                }
                scored += count
            }
            try step(db, sql: """
                SELECT c.repo, c.code FROM repo_code_stale s CROSS JOIN repo_vector_code c
                WHERE s.block >= ?1 AND s.block < ?2 AND c.repo >= s.block << \(shift) AND c.repo < (s.block + 1) << \(shift)
                  AND length(c.code) = ?3
                """, arguments: [blocks.lowerBound, blocks.upperBound, length]) { raw in
                guard sqlite3_column_bytes(raw, 1) == Int32(length), let stored = sqlite3_column_blob(raw, 1) else { return }
                best.insert(score: code.score(query, stored), seq: sqlite3_column_int64(raw, 0))
                scored += 1
            }
        }
        return (best, scored)
    }

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
