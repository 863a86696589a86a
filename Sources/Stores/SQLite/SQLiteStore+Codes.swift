import EmbedStarCore
import Foundation
import GRDB
import GRDBSQLite
import Logging

/// The byte codes' file beside the database: packing the blocks changed since, and checkpoints.
extension SQLiteStore {
    /// When the queue runs dry: the codes written since the last time are packed for search.
    /// Search is right either way, so a failure is logged here, not thrown.
    public func maintain(owner: String, modelIdentity model: String) async throws {
        do {
            try await pack()
        } catch {
            logger.warning("packing byte codes failed; search reads them unpacked meanwhile", metadata: ["error": "\(error)"])
        }
    }

    /// The file the byte codes are packed in for search (`CodeFile`), beside the database.
    public var codesPath: String { CodeFile.path(for: file) }

    /// Packs the byte codes of the blocks changed since they were last packed (`CodeFile`), 64
    /// blocks in each transaction so a writer of another process waits at most one of them
    /// (about 6 MB written at 384 dimensions); returns how many it packed. Two lookups when
    /// nothing changed.
    @discardableResult
    public func pack() async throws -> Int {
        let pool = try database()
        var total = 0
        while try await pool.read({ db in try CodeFile.anyStale(db) }) {
            let packed = try await transaction { db in try CodeFile.pack(db, limit: 64) }
            if packed == 0 { break }
            total += packed
        }
        if total > 0 {
            // Into the codes file itself, which searches read mapped. Left in the write-ahead
            // log (64 MB before SQLite checkpoints on its own: all the codes of 100,000 repos),
            // every page is a read from the log, and every process that opens the file first
            // reads the whole log to index it: 76 ms for `embed-star search` against 39 ms.
            try await checkpoint("codes")
        }
        return total
    }

    /// Copies what the write-ahead log of `schema` ("main" or "codes") holds into its file and
    /// empties the log (waiting for other processes' readers up to the busy timeout).
    func checkpoint(_ schema: String) async throws {
        try await database().writeWithoutTransaction { db in try db.execute(sql: "PRAGMA \(schema).wal_checkpoint(TRUNCATE)") }
    }

    /// How many blocks of byte codes wait to be packed (for tests and tools).
    public func unpackedBlocks() async throws -> Int {
        try await database().read { db in try CodeFile.unpackedCount(db) }
    }
}
