import EmbedStarCore
import Foundation
import GRDB

public struct SQLiteStoreError: Error, CustomStringConvertible, RetryableError {
    public var description: String
    /// The database was busy: trying again later can succeed.
    public var isRetryable: Bool

    init(_ description: String, retryable: Bool = false) {
        self.description = description
        isRetryable = retryable
    }
}

/// The pool, opened on first use and closed at shutdown.
final class OpenedPool: @unchecked Sendable {
    private let lock = NSLock()
    private var pool: DatabasePool?

    func get(_ open: () throws -> DatabasePool) throws -> DatabasePool {
        lock.lock()
        defer { lock.unlock() }
        if let pool { return pool }
        let opened = try open()
        pool = opened
        return opened
    }

    func close() {
        lock.lock()
        let pool = self.pool
        self.pool = nil
        lock.unlock()
        try? pool?.close()
    }
}
