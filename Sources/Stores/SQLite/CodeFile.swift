import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite

/// The byte codes packed for search in a file of their own beside the database
/// (`<file>.codes`), attached to every connection as `codes`.
///
/// **Why a file of its own.** The file has 64 KB pages, and a packed row holds at most
/// `rowBytes` of codes, so each row lies whole in one page and SQLite hands a search the codes
/// where the mapped file holds them. In the database's 4 KB pages a row of 256 codes spread over
/// 25 overflow pages, which SQLite copied into one buffer on every read (a third of a search),
/// and past 2 GB (1,000,000 repos) the mapping ends and every page was a `pread` too. The codes
/// file of 1,000,000 repos at 384 dimensions is about 400 MB, mapped whole.
///
/// **What is true.** `repo_vector_code` in the database stays the truth. Triggers on it (schema
/// version 6, plain SQL, so they fire in every version's connections) bump the version of the
/// block of 256 `seq`s a code is written, changed or removed in, and a counter of changes. A
/// packed row carries the version of its block it was packed at, and a search trusts it only
/// while that is the block's version; the code rows of the other blocks are read instead. So no
/// commit has to span both files: a crash, a copy of one file without the other, or an older
/// version packing its own blocks (version 5, inside the database) can make the search slower,
/// never wrong. The file carries the database's token; a file of another database is emptied.
///
/// **When it is packed.** `SQLiteStore.prepare` and every claim that finds the queue dry pack
/// the blocks whose version moved (`pack`), after one lookup of the change counter.
enum CodeFile {
    static func path(for database: URL) -> String { database.path + ".codes" }

    /// The codes file's page size: the largest SQLite has.
    static let pageSize = 65_536
    /// At most this many bytes of `seq`s and codes in one row: SQLite keeps a row of up to the
    /// page size less 35 bytes in its page.
    static let rowBytes = 60_000
    /// Code lengths the packed rows hold (a row's key has 14 bits for it): 16,379 dimensions.
    /// Longer codes are searched in their rows.
    static let maxLength = (1 << 14) - 1

    /// A packed row's key: its block, its part of that block, and the code length, so the rows
    /// of a range of blocks are one range of keys.
    static func key(block: Int64, part: Int, length: Int) -> Int64 { block << 22 | Int64(part) << 14 | Int64(length) }
    static func firstKey(_ block: Int64) -> Int64 { block << 22 }

    /// Schema version 6, in the database: the block versions, the change counter and the token.
    /// The triggers insert without a conflict clause: a statement's `OR REPLACE` (the store
    /// writes codes so) would replace theirs, and an `OR IGNORE` become a reset of the version.
    /// Version 5's packed rows are emptied (they live in the codes file now) and its blocks all
    /// marked stale, so a version-5 process still running reads code rows, which are right.
    static let migration = """
        CREATE TABLE repo_code_version (block INTEGER PRIMARY KEY NOT NULL, version INTEGER NOT NULL);
        CREATE TABLE repo_code_change (id INTEGER PRIMARY KEY CHECK (id = 1), counter INTEGER NOT NULL);
        INSERT INTO repo_code_change (id, counter) VALUES (1, 1);
        CREATE TABLE embed_star_code_file (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL);
        INSERT INTO embed_star_code_file (id, token) VALUES (1, lower(hex(randomblob(16))));
        CREATE TRIGGER repo_code_version_insert AFTER INSERT ON repo_vector_code BEGIN
          INSERT INTO repo_code_version (block, version) SELECT NEW.repo >> \(CodeBlocks.shift), 0
            WHERE NOT EXISTS (SELECT 1 FROM repo_code_version WHERE block = NEW.repo >> \(CodeBlocks.shift));
          UPDATE repo_code_version SET version = version + 1 WHERE block = NEW.repo >> \(CodeBlocks.shift);
          UPDATE repo_code_change SET counter = counter + 1;
        END;
        CREATE TRIGGER repo_code_version_update AFTER UPDATE ON repo_vector_code BEGIN
          INSERT INTO repo_code_version (block, version) SELECT NEW.repo >> \(CodeBlocks.shift), 0
            WHERE NOT EXISTS (SELECT 1 FROM repo_code_version WHERE block = NEW.repo >> \(CodeBlocks.shift));
          UPDATE repo_code_version SET version = version + 1 WHERE block IN (OLD.repo >> \(CodeBlocks.shift), NEW.repo >> \(CodeBlocks.shift));
          UPDATE repo_code_change SET counter = counter + 1;
        END;
        CREATE TRIGGER repo_code_version_delete AFTER DELETE ON repo_vector_code BEGIN
          UPDATE repo_code_version SET version = version + 1 WHERE block = OLD.repo >> \(CodeBlocks.shift);
          UPDATE repo_code_change SET counter = counter + 1;
        END;
        INSERT INTO repo_code_version (block, version) SELECT DISTINCT repo >> \(CodeBlocks.shift), 1 FROM repo_vector_code;
        DELETE FROM repo_code_block;
        INSERT OR IGNORE INTO repo_code_stale (block) SELECT DISTINCT repo >> \(CodeBlocks.shift) FROM repo_vector_code;
        """

    /// The codes file's own format (its `user_version`); a file of another format is emptied.
    static let format = 1

    /// Attaches the codes file to a new connection; the writer creates it and its tables (a
    /// pool opens its writer first, so readers find them).
    static func attach(_ db: Database, path: String) throws {
        try db.execute(sql: "ATTACH DATABASE ? AS codes", arguments: [path])
        guard !db.configuration.readonly else { return }
        // Set up once: a new file, or one of another format (emptied). An open of a file that
        // is set up writes nothing. Two processes opening a new database at once both find it
        // unset: the set-up runs under a lock on a file beside it (the page size and WAL cannot
        // be set in a transaction, and the second would find the first's tables), and looks
        // again once it holds the lock.
        guard try Int.fetchOne(db, sql: "PRAGMA codes.user_version") ?? 0 != format else { return }
        try FileLock.holding(path + ".lock") {
            guard try Int.fetchOne(db, sql: "PRAGMA codes.user_version") ?? 0 != format else { return }
            try db.execute(sql: """
                DROP TABLE IF EXISTS codes.code_block;
                DROP TABLE IF EXISTS codes.code_meta;
                PRAGMA codes.page_size = \(pageSize);
                PRAGMA codes.journal_mode = WAL;
                CREATE TABLE codes.code_meta (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, packed INTEGER NOT NULL);
                CREATE TABLE codes.code_block (
                  key INTEGER PRIMARY KEY, version INTEGER NOT NULL, length INTEGER NOT NULL, seqs BLOB NOT NULL, codes BLOB NOT NULL);
                PRAGMA codes.user_version = \(format);
                """)
        }
    }

    /// Makes the codes file this database's (in the write transaction, after the migrations):
    /// a file of another database, or a new one, is emptied and takes the database's token.
    static func adopt(_ db: Database) throws -> Bool {
        let token = try String.fetchOne(db, sql: "SELECT token FROM embed_star_code_file WHERE id = 1")
        let held = try String.fetchOne(db, sql: "SELECT token FROM codes.code_meta WHERE id = 1")
        guard let token, held != token else { return false }
        try db.execute(sql: "DELETE FROM codes.code_block")
        try db.execute(sql: "INSERT OR REPLACE INTO codes.code_meta (id, token, packed) VALUES (1, ?, 0)", arguments: [token])
        return true
    }

    /// Whether the codes file belongs to this database (else a search reads the code rows).
    static func belongs(_ db: Database) throws -> Bool {
        let token = try String.fetchOne(db, sql: "SELECT token FROM embed_star_code_file WHERE id = 1")
        let held = try String.fetchOne(db, sql: "SELECT token FROM codes.code_meta WHERE id = 1")
        return token != nil && token == held
    }

    /// Whether any block may wait to be packed: the change counter moved since the last pack
    /// that left none (two lookups).
    static func anyStale(_ db: Database) throws -> Bool {
        let counter = try Int64.fetchOne(db, sql: "SELECT counter FROM repo_code_change WHERE id = 1")
        let packed = try Int64.fetchOne(db, sql: "SELECT packed FROM codes.code_meta WHERE id = 1")
        return counter != packed
    }

    /// The blocks whose packed rows are not at their version: `v.block` and `v.version` of
    /// `repo_code_version v`.
    static let unpacked = """
        NOT EXISTS (SELECT 1 FROM codes.code_block b
                    WHERE b.key >= v.block << 22 AND b.key < (v.block + 1) << 22 AND b.version = v.version)
        """

    /// Packs up to `limit` blocks whose version moved (in the write transaction); returns how
    /// many. When none is left, notes the change counter, so the next check is two lookups.
    @discardableResult
    static func pack(_ db: Database, limit: Int) throws -> Int {
        let counter = try Int64.fetchOne(db, sql: "SELECT counter FROM repo_code_change WHERE id = 1") ?? 0
        let stale = try Row.fetchAll(db, sql: "SELECT v.block, v.version FROM repo_code_version v WHERE \(unpacked) ORDER BY v.block LIMIT ?",
                                     arguments: [limit])
        guard !stale.isEmpty else {
            try db.execute(sql: "UPDATE codes.code_meta SET packed = ? WHERE id = 1", arguments: [counter])
            return 0
        }
        let codes = try db.cachedStatement(sql: "SELECT repo, code FROM repo_vector_code WHERE repo >= ? AND repo < ? ORDER BY repo")
        let insert = try db.cachedStatement(sql: "INSERT INTO codes.code_block (key, version, length, seqs, codes) VALUES (?, ?, ?, ?, ?)")
        for row in stale {
            let block: Int64 = row["block"], version: Int64 = row["version"]
            try db.execute(sql: "DELETE FROM codes.code_block WHERE key >= ? AND key < ?", arguments: [firstKey(block), firstKey(block + 1)])
            // Grouped by length: a model change can leave codes of two dimensions in one block.
            var groups: [Int: [(seq: Int64, code: Data)]] = [:]
            let rows = try Row.fetchCursor(codes, arguments: [CodeBlocks.firstSeq(block), CodeBlocks.firstSeq(block + 1)])
            while let code = try rows.next() {
                let data: Data = code["code"]
                if data.count <= maxLength { groups[data.count, default: []].append((code["repo"], data)) }
            }
            // A block with no codes left gets an empty row at its version: it is packed.
            if groups.isEmpty { try insert.execute(arguments: [firstKey(block), version, 0, Data(), Data()]) }
            for (length, members) in groups {
                let perRow = max(1, rowBytes / (length + 8))
                for (part, start) in stride(from: 0, to: members.count, by: perRow).enumerated() {
                    var seqs = Data(capacity: perRow * 8), packed = Data(capacity: perRow * length)
                    for member in members[start..<min(start + perRow, members.count)] {
                        withUnsafeBytes(of: member.seq.littleEndian) { seqs.append(contentsOf: $0) }
                        packed.append(member.code)
                    }
                    try insert.execute(arguments: [key(block: block, part: part, length: length), version, length, seqs, packed])
                }
            }
        }
        return stale.count
    }

    /// How many blocks wait to be packed (for tests and tools).
    static func unpackedCount(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM repo_code_version v WHERE \(unpacked)") ?? 0
    }

    /// Scores `code` against every code of its length in `blocks`: the packed rows that are at
    /// their block's version, read in place, then the code rows of the other blocks (none to
    /// look for when the change counter says all are packed, read in the same snapshot). The
    /// best `kept`, and how many it scored.
    static func scan(_ db: Database, _ code: VectorCode?, kept: Int, blocks: Range<Int64>) throws -> (best: TopK, scored: Int) {
        var best = TopK(capacity: kept)
        var scored = 0
        guard let code else { return (best, 0) }
        let allPacked = try !anyStale(db)
        let length = VectorCode.length(code.bytes.count)
        try code.bytes.withUnsafeBytes { q in
            let query = q.baseAddress!
            try CodeBlocks.step(db, sql: """
                SELECT b.seqs, b.codes FROM codes.code_block b CROSS JOIN repo_code_version v ON v.block = b.key >> 22
                WHERE b.key >= ?1 AND b.key < ?2 AND b.length = ?3 AND b.version = v.version
                """, arguments: [firstKey(blocks.lowerBound), firstKey(blocks.upperBound), length]) { raw in
                let count = Int(sqlite3_column_bytes(raw, 0)) / 8
                // Both blobs stay where SQLite holds them (in the mapped page) until the next step.
                guard count > 0, Int(sqlite3_column_bytes(raw, 1)) == count * length,
                      let seqs = sqlite3_column_blob(raw, 0), let codes = sqlite3_column_blob(raw, 1) else { return }
                for index in 0..<count {
                    best.insert(score: code.score(query, codes + index * length),
                                seq: Int64(littleEndian: seqs.loadUnaligned(fromByteOffset: index * 8, as: Int64.self)))
                }
                scored += count
            }
            guard !allPacked else { return }
            try CodeBlocks.step(db, sql: """
                SELECT c.repo, c.code FROM repo_code_version v CROSS JOIN repo_vector_code c
                WHERE v.block >= ?1 AND v.block < ?2 AND \(unpacked)
                  AND c.repo >= v.block << \(CodeBlocks.shift) AND c.repo < (v.block + 1) << \(CodeBlocks.shift) AND length(c.code) = ?3
                """, arguments: [blocks.lowerBound, blocks.upperBound, length]) { raw in
                guard sqlite3_column_bytes(raw, 1) == Int32(length), let stored = sqlite3_column_blob(raw, 1) else { return }
                best.insert(score: code.score(query, stored), seq: sqlite3_column_int64(raw, 0))
                scored += 1
            }
        }
        return (best, scored)
    }
}
