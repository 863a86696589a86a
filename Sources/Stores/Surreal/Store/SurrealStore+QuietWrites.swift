import EmbedStarCore
import Foundation
import Logging
import SurrealClient

/// Vector writes in the engine's import mode (`OPTION IMPORT`, SurrealDB 3.x): the repo UPDATEs
/// of a write-back skip the table's events, field definitions (`VALUE`, `ASSERT`, `DEFAULT`,
/// `READONLY`, types, references), views, live queries and changefeed.
///
/// The repo event is embed-star's own, and for these UPDATEs it does nothing: they set only
/// embed-star's fields, never a watched or searched one, and never remove a vector. Skipping it
/// is what costs the engine: at 384 dimensions on 3.2.4 the same UPDATEs ran at 71-84% of a plain
/// table's rate with the event and at 94-96% without it (`bench/write_statements.py`, variants
/// `schema` and `schema-quiet`).
///
/// Anything else that watches the table would miss the vectors, so the writes are quiet only
/// while nothing else does: no event but embed-star's, no view (`DEFINE TABLE ... AS SELECT`
/// over it), no live query, no changefeed on the table or its database, no field definition that
/// reads embed-star's fields or constrains them, and no watched field that embed-star writes.
/// That is read from `INFO FOR TABLE`, `INFO FOR DB` and `INFO FOR NS` at the first write and
/// every ``observersCheckEvery`` after it; a user who may not read the namespace (its database
/// changefeed) gets no quiet writes. A live query, view or event defined while embed-star runs
/// misses the vector writes of at most that interval, for good. `quiet_writes: false` turns it
/// off. Not on 2.x (``SurrealDialect/quietWrites``).
struct QuietWriteState {
    var checkedAt: ContinuousClock.Instant
    /// Why the writes are not quiet (nil when they are).
    var reason: String?
    var quiet: Bool { reason == nil }
}

extension SurrealStore {
    static let observersCheckEvery: Duration = .seconds(30)

    /// The repo fields a vector write sets.
    static let writtenFields: Set<String> = [
        "embedding", "embedding_model", "embedding_hash", "embedding_generated_at", "embedding_attempts", "embedding_error",
    ]

    /// Whether the next write's repo UPDATEs run in import mode (``QuietWriteState``).
    func writesQuietly() async -> Bool {
        guard configuration.quietWrites, (try? await dialect())?.quietWrites == true else { return false }
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
            defer { state = QuietWriteState(checkedAt: now, reason: reason) }
            return state
        }
        if previous?.reason != reason || previous == nil {
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

    /// What, besides embed-star, watches writes to the repo table or constrains embed-star's
    /// fields on it (nil: nothing), and whether the server lets this user set `OPTION IMPORT`.
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
        if case .object(let fields) = tableInfo["fields"] ?? .none {
            let constraining = fields.filter { Self.constrainsOurFields(name: $0.key, definition: $0.value.string ?? "") }.keys.sorted()
            if !constraining.isEmpty { return "its field definitions \(constraining.joined(separator: ", "))" }
        }
        if database["tables"]?[table]?.string?.contains("CHANGEFEED") == true {
            return "the table's changefeed"
        }
        let namespace: [SurrealValue]
        do {
            namespace = try await client.query("INFO FOR NS;")
        } catch {
            return "the namespace's definition could not be read, so a database changefeed cannot be ruled out (\(error))"
        }
        if namespace.last?["databases"]?[configuration.database]?.string?.contains("CHANGEFEED") == true {
            return "the database's changefeed"
        }
        // Setting the option needs the right to edit the database; a refusal inside the write's
        // transaction would not abort it, so it is asked here, on its own.
        do {
            _ = try await client.query("OPTION IMPORT = false;")
        } catch {
            return "the server refuses OPTION IMPORT to this user (\(error))"
        }
        return nil
    }

    /// A field definition that the vector writes would skip and that matters to them: one of
    /// embed-star's fields with a clause of its own (`VALUE`, `ASSERT`, `DEFAULT`, `READONLY`,
    /// `REFERENCE`), or another field whose definition reads one of embed-star's fields
    /// (`has_vector VALUE embedding != NONE`). Types alone (migration 1's on a `SCHEMAFULL`
    /// table) do not: embed-star writes what they say.
    static func constrainsOurFields(name: String, definition: String) -> Bool {
        let upper = definition.uppercased()
        let base = name.split(separator: "[").first.map(String.init) ?? name
        if writtenFields.contains(base) {
            return [" VALUE ", " ASSERT ", " DEFAULT ", " READONLY", " REFERENCE"].contains { upper.contains($0) }
        }
        let clauses = [" VALUE ", " ASSERT ", " DEFAULT "].compactMap { upper.range(of: $0) }.map(\.lowerBound)
        guard let first = clauses.min() else { return false }
        return definition[first...].contains("embedding")
    }
}
