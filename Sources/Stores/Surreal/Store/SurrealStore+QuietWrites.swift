import EmbedStarCore
import Foundation
import Logging
import SurrealClient

/// Vector writes in the engine's import mode (`OPTION IMPORT`): the repo UPDATEs of a write-back
/// skip the table's events, field definitions, views, live queries and (3.x) changefeed.
///
/// The repo event is embed-star's own, and for these UPDATEs it does nothing: they set only
/// embed-star's fields, never a watched or searched one, and never remove a vector. Skipping it
/// is what costs the engine: at 384 dimensions on 3.2.4 the same UPDATEs ran at 75-81% of a plain
/// table's rate with the event and at 92-97% without it (`bench/write_statements.py`, variants
/// `schema` and `schema-quiet`).
///
/// Anything else that watches the table would miss the vectors, so the writes are quiet only
/// while nothing else does: no event but embed-star's, no view (`DEFINE TABLE ... AS SELECT`
/// over it), no live query, no changefeed on the table or its database, and no watched field
/// that embed-star writes. That is read from `INFO FOR TABLE` / `INFO FOR DB` (and `INFO FOR NS`
/// where the user may) at the first write and every ``observersCheckEvery`` after it, so a live
/// query or view defined while embed-star runs misses at most that long of vector writes.
/// `quiet_writes: false` turns it off for good.
struct QuietWriteState {
    var checkedAt: ContinuousClock.Instant
    var quiet: Bool
    /// Why the writes are not quiet (nil when they are).
    var reason: String?
}

extension SurrealStore {
    static let observersCheckEvery: Duration = .seconds(30)

    /// The repo fields a vector write sets.
    static let writtenFields: Set<String> = [
        "embedding", "embedding_model", "embedding_hash", "embedding_generated_at", "embedding_attempts", "embedding_error",
    ]

    /// Whether the next write's repo UPDATEs run in import mode (``QuietWriteState``).
    func writesQuietly() async -> Bool {
        guard configuration.quietWrites else { return false }
        let now = ContinuousClock.now
        if let known = quietWrites.withLock({ $0 }), now - known.checkedAt < Self.observersCheckEvery { return known.quiet }
        var reason: String?
        if let field = configuration.watchedFields.first(where: Self.writtenFields.contains) {
            reason = "watched field \(field) is one embed-star writes"
        } else {
            do {
                reason = try await tableObserver()
            } catch {
                reason = "the table's definition could not be read (\(error))"
            }
        }
        let previous = quietWrites.withLock { state in
            defer { state = QuietWriteState(checkedAt: now, quiet: reason == nil, reason: reason) }
            return state
        }
        if previous?.quiet != (reason == nil) || previous?.reason != reason {
            if let reason {
                logger.notice("vector writes fire the repo table's events (slower): something else watches the table", metadata: [
                    "table": "\(table)", "reason": "\(reason)",
                ])
            } else if previous != nil {
                logger.notice("vector writes are quiet again: nothing but embed-star watches the repo table", metadata: ["table": "\(table)"])
            }
        }
        return reason == nil
    }

    /// What, besides embed-star, watches writes to the repo table (nil: nothing).
    func tableObserver() async throws -> String? {
        let answers = try await client.query("INFO FOR TABLE \(table); INFO FOR DB;")
        guard answers.count == 2 else { throw SurrealError(.protocolViolation, "INFO answered \(answers.count) results, not 2") }
        let tableInfo = answers[0], database = answers[1]
        if case .object(let events) = tableInfo["events"] ?? .none {
            let others = events.keys.filter { !$0.hasPrefix("embed_star_") }.sorted()
            if !others.isEmpty { return "its events \(others.joined(separator: ", "))" }
        }
        if case .object(let views) = tableInfo["tables"] ?? .none, !views.isEmpty {
            return "the views \(views.keys.sorted().joined(separator: ", "))"
        }
        if case .object(let lives) = tableInfo["lives"] ?? .none, !lives.isEmpty {
            return "\(lives.count) live \(lives.count == 1 ? "query" : "queries")"
        }
        if database["tables"]?[table]?.string?.contains("CHANGEFEED") == true {
            return "the table's changefeed"
        }
        // A database user may not read the namespace: then its changefeed is not looked for.
        if let namespace = try? await client.query("INFO FOR NS;"),
           namespace.last?["databases"]?[configuration.database]?.string?.contains("CHANGEFEED") == true {
            return "the database's changefeed"
        }
        return nil
    }

    /// After the server refused import mode (a user without the right to set it): never again.
    func stopQuietWrites(_ error: SurrealError) {
        quietWrites.withLock { $0 = QuietWriteState(checkedAt: .now + .seconds(365 * 86_400), quiet: false, reason: "refused: \(error.message)") }
        logger.notice("the server refused quiet vector writes (OPTION IMPORT); they fire the repo table's events from now on", metadata: [
            "error": "\(error.message)",
        ])
    }
}
