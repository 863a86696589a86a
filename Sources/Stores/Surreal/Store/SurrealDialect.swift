import SurrealClient

/// What differs in SurrealQL between the server versions the store speaks: SurrealDB 2.x and 3.x.
/// The store asks the server's version when it prepares and builds every statement for it.
///
/// Differences that need no dialect are written once in the form both accept: the store never
/// lets one `SET` clause read a field an earlier clause of the same statement assigns (2.x sees
/// the new value, 3.x the old one), and it reads a statement's result as the last one (3.x
/// answers `BEGIN`/`COMMIT` with results of their own, 2.x does not).
struct SurrealDialect: Sendable, Equatable, CustomStringConvertible {
    /// The versions this store is tested on, as the error for an older server names them.
    static let supportedRange = "2.0 or newer (tested on 2.3 and 3.2)"
    static let newest = SurrealDialect(major: 3, minor: 0, version: "3.x")

    var major: Int
    var minor: Int
    /// The server's own words, such as `surrealdb-2.3.10`.
    var version: String

    /// The function that makes a record id from a table and an id: `type::record` since 3.0
    /// (2.x reads a second argument there as a table name), `type::thing` before.
    var recordFunction: String { major >= 3 ? "type::record" : "type::thing" }

    /// `DEFINE INDEX ... COUNT` (3.x only).
    var hasCountIndexes: Bool { major >= 3 }
    /// How the words of lexical search are kept and ranked (``LexicalWords``). On 3.x: as text,
    /// in two `FULLTEXT` indexes that rank by BM25 in the engine. On 2.x: as arrays of the
    /// analyzer's terms (`search::analyze`), in two plain indexes, ranked by BM25 in embed-star
    /// (``SurrealStore/lexicalSearch``). 2.x's own full-text index (`SEARCH`) is not used: on
    /// 2.3.10 the engine went down ("advance out of bounds" panic) in three test runs of three
    /// with it, against two of three without, and it made concurrent writes conflict (289 of
    /// 600 writes).
    var keepsWordsAsTerms: Bool { major < 3 }
    /// The migration that sets the words up: 8 on 3.x; 10 on 2.x, where 7 and 8 set nothing up
    /// (the binaries before 10 kept no words on 2.x).
    var wordsMigration: Int { keepsWordsAsTerms ? 10 : 8 }
    /// Whether the store guards against a storage engine that lets two concurrent writes of one
    /// record both commit: SurrealDB 2.x's memory and SurrealKV storage do (seen here), and so
    /// does 3.x on memory and SurrealKV (surrealdb issue 7303, surrealkv issue 376). Nothing the
    /// client can ask proves a server safe, so the guards are on for every server unless the
    /// operator says the 3.x server's storage is safe (`lost_write_guards: false`, RocksDB or
    /// TiKV); on 2.x they are always on.
    var guarded: Bool
    /// Two concurrent conditional UPDATEs of one record can both commit: an instance's workers
    /// claim one at a time, so they never hold one entry both, a claim's leases are read back
    /// after it committed, and no claim runs while a sweep does.
    var claimsOneAtATime: Bool { guarded }
    /// The same storage can leave a secondary index without a record's entry after concurrent
    /// writes of it (seen on the queue's claim index in a rolling deploy: 50 claimable entries
    /// the index did not list, none of them claimed for minutes): the store checks the queue's
    /// indexes against the table when a claim finds nothing, and rebuilds them, and re-reads the
    /// counts once a minute when idle.
    var indexesCanMissRecords: Bool { guarded }
    /// 2.x can also keep an index key of a value its record no longer holds, so counting from the
    /// index alone says one record too many (``SurrealStore/repairCountIndexes(model:)``). Not
    /// seen on 3.x, where the check would read every vector for nothing on a RocksDB server and
    /// a rebuild is not atomic (the index refills in the background while `stats` counts from it).
    var indexesCanCountStaleKeys: Bool { guarded && major < 3 }
    /// The sweep reads its next chunk as a record range passed as a parameter (`FROM $range`):
    /// 2.x answers `WHERE id > $cursor ORDER BY id LIMIT $n` by reading and sorting the whole
    /// table (0.6 s a chunk at 20,000 repos, whatever the cursor: the sweep grows with the
    /// square of the table), and the range in 0.07 s. 3.2 reads the range slower than it answers
    /// the comparison (1.5 s against 0.2 s near the start), so it keeps the comparison.
    var sweepsByRange: Bool { major < 3 }
    /// Vector writes may run in import mode (``QuietWriteState``), and then carry each UPDATE's
    /// condition in `WHERE` rather than in an `IF` block (cheaper on 3.x). Not on 2.x: 2.3.10
    /// panicked ("advance out of bounds") on the first quiet write of the `WHERE` shape in a
    /// backfill of 2,000 repos, every time, for a reason not found; and its import mode does
    /// not skip changefeeds anyway.
    var quietWrites: Bool { major >= 3 }

    var description: String { version }

    /// A string written into a statement as a SurrealQL literal (`'...'`), for the statements
    /// whose plan depends on seeing the value: SurrealDB 3 counts a model's vectors from the
    /// model index alone only when the model is in the text, and reads every record when it is a
    /// parameter (9.5 s against 0.2 s at 100,000 repos). Nil for text with control characters:
    /// the caller passes those as a parameter.
    static func literal(_ text: String) -> String? {
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar == "\\" || scalar == "'" { escaped.append("\\") }
            escaped.append(scalar)
        }
        return "'\(String(escaped))'"
    }

    /// Reads the answer of the `version` RPC (`surrealdb-2.3.10`, `3.2.4`, ...).
    init(serverVersion: String, guarded: Bool = true) throws {
        let numbers = serverVersion.drop { !$0.isNumber }.split(separator: ".", maxSplits: 2)
        guard numbers.count >= 2, let major = Int(numbers[0]), let minor = Int(numbers[1]) else {
            throw SurrealError(.protocolViolation, "cannot tell the SurrealDB version from its answer \"\(serverVersion)\"; supported: SurrealDB \(Self.supportedRange)")
        }
        guard major >= 2 else {
            throw SurrealError(.unsupportedServer, "the server runs SurrealDB \(serverVersion), which this store does not support; supported: SurrealDB \(Self.supportedRange)")
        }
        self.init(major: major, minor: minor, version: serverVersion, guarded: guarded)
    }

    init(major: Int, minor: Int, version: String, guarded: Bool = true) {
        self.major = major
        self.minor = minor
        self.version = version
        self.guarded = guarded || major < 3
    }
}
