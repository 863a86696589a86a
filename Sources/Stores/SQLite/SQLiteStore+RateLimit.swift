import EmbedStarCore
import Foundation
import GRDB

/// The provider account's rate limits, shared by the instances using this database
/// (``RepoStore/shareRateLimit(_:)``): one row per account holding its ``RateLimitLedger``,
/// read and written in one transaction (SQLite runs one writer at a time, so two reports never
/// lose each other).
extension SQLiteStore {
    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare {
        try await transaction { db in
            let stored = try String.fetchOne(db, sql: "SELECT ledger FROM embed_star_rate_limit WHERE account = ?", arguments: [report.account])
            var ledger = RateLimitLedger()
            if let stored, let decoded = try? JSONDecoder().decode(RateLimitLedger.self, from: Data(stored.utf8)) {
                ledger = decoded  // a row that cannot be read is started again
            }
            let share = ledger.record(report, now: Date())
            let encoded = String(decoding: try JSONEncoder().encode(ledger), as: UTF8.self)
            try db.execute(sql: """
                INSERT INTO embed_star_rate_limit (account, ledger) VALUES (?, ?)
                ON CONFLICT (account) DO UPDATE SET ledger = excluded.ledger
                """, arguments: [report.account, encoded])
            return share
        }
    }

    public var sharesRateLimits: Bool { true }
}
