import Synchronization

/// Vectors by content hash (which covers provider, model, dimensions, prefixes and the text):
/// least recently used first out, each entry expiring after `ttl`, the whole bounded in bytes.
public final class EmbeddingCache: Sendable {
    private struct Entry {
        var vector: [Float]
        var expires: Duration
        var bytes: Int
        var older: String?
        var newer: String?
    }

    private struct Storage {
        var entries: [String: Entry] = [:]
        var oldest: String?
        var newest: String?
        var bytes = 0
        var hits = 0
        var misses = 0
    }

    public let maxBytes: Int
    public let ttl: Duration
    private let clock: any ResilienceClock
    private let storage = Mutex(Storage())

    public init(maxBytes: Int, ttl: Duration, clock: any ResilienceClock = SystemResilienceClock()) {
        self.maxBytes = maxBytes
        self.ttl = ttl
        self.clock = clock
    }

    /// What an entry costs: the floats plus the key and bookkeeping.
    static func cost(key: String, vector: [Float]) -> Int { vector.count * 4 + key.utf8.count * 3 + 96 }

    /// What an entry costs against `maxBytes`, for tests that size a cache in entries.
    public static func costForTests(key: String, vector: [Float]) -> Int { cost(key: key, vector: vector) }

    public func get(_ key: String) -> [Float]? {
        let now = clock.now()
        return storage.withLock { s in
            guard let entry = s.entries[key] else { s.misses += 1; return nil }
            guard entry.expires > now else {
                Self.unlink(key, &s)
                s.misses += 1
                return nil
            }
            Self.unlink(key, &s)
            Self.link(key, entry, &s)
            s.hits += 1
            return entry.vector
        }
    }

    public func put(_ key: String, _ vector: [Float]) {
        let bytes = Self.cost(key: key, vector: vector)
        guard bytes <= maxBytes else { return }
        let expires = clock.now() + ttl
        storage.withLock { s in
            if s.entries[key] != nil { Self.unlink(key, &s) }
            while s.bytes + bytes > maxBytes, let oldest = s.oldest { Self.unlink(oldest, &s) }
            Self.link(key, Entry(vector: vector, expires: expires, bytes: bytes), &s)
        }
    }

    public var statistics: (hits: Int, misses: Int, entries: Int, bytes: Int) {
        storage.withLock { ($0.hits, $0.misses, $0.entries.count, $0.bytes) }
    }

    private static func link(_ key: String, _ entry: Entry, _ s: inout Storage) {
        var entry = entry
        entry.older = s.newest
        entry.newer = nil
        if let newest = s.newest { s.entries[newest]?.newer = key }
        s.newest = key
        if s.oldest == nil { s.oldest = key }
        s.entries[key] = entry
        s.bytes += entry.bytes
    }

    private static func unlink(_ key: String, _ s: inout Storage) {
        guard let entry = s.entries.removeValue(forKey: key) else { return }
        if let older = entry.older { s.entries[older]?.newer = entry.newer } else { s.oldest = entry.newer }
        if let newer = entry.newer { s.entries[newer]?.older = entry.older } else { s.newest = entry.older }
        s.bytes -= entry.bytes
    }
}
