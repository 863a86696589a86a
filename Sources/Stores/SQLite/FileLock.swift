import Foundation

/// An exclusive lock between processes on a file beside the database (`flock`): opening a new
/// database and setting up its codes file run under one, so processes starting together do not
/// trip over each other.
enum FileLock {
    /// Runs `body` holding the lock on the file at `path`, created if missing.
    static func holding(_ path: String, _ body: () throws -> Void) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SQLiteStoreError("cannot open the lock file \(path): errno \(errno)") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw SQLiteStoreError("cannot lock \(path): errno \(errno)") }
        }
        defer { flock(descriptor, LOCK_UN) }
        try body()
    }
}
