import EmbedStarCore
import Foundation
import Logging
import SurrealClient

/// Each repo's words for lexical search, in a table of their own, `embed_star_words`, keyed like
/// the repo (`embed_star_words:⟨key⟩` for `repo:⟨key⟩`, every key kind), with two full-text
/// indexes (BM25): `title` (the name as written and in lower case, the owner, the full name)
/// and `body` (description, topics, language).
///
/// Only embed-star writes them, one instance at a time (``SurrealStore/keepWords()``): the repo
/// event notes a repo whose words changed (`embed_star_words_change`, a new record per note),
/// and embed-star rewrites the words of the noted repos within about a second. Not written by
/// the event itself, nor indexes on the repo table: SurrealDB 2.3's full-text index makes
/// concurrent writes conflict (measured: 6 writers, 289 of 600 writes failed with a conflict;
/// none without the index), so the collector's writes would fail, and 2.3 re-indexes a record's
/// full-text fields on every write of it, vectors included (a 2,000-repo backfill took 338 s
/// with them). The repos stored before migration 8 are added in chunks by the same task, and
/// the full-text indexes are defined once they are all there: the engines build an index over
/// a filled table in one pass, several times faster than record by record.
enum LexicalWords {
    static let table = "embed_star_words"
    /// Notes of repos whose words changed, written by the repo event.
    static let changes = "embed_star_words_change"
    static let analyzer = "embed_star_words"
    /// The fill's progress: `cursor` (the last repo added), `finished`, `added`, and the
    /// instance filling (`filler`, until `filler_until`).
    static let progress = "embed_star_meta:words"
    /// The repo fields the words come from: a change of any of them rewrites the repo's words.
    static let sourceFields = "name, owner, full_name, description, topics, language"
    /// The fields of a words record searched, with their weights in the score.
    static let searched: [(field: String, weight: Int)] = [("title", 3), ("body", 1)]

    /// Words split at spaces, at changes of character class (letters, digits, punctuation) and
    /// of case (`TomlKit` is `toml kit`), folded to lower case and ASCII, cut to English stems.
    static let analyzerDefinition =
        "DEFINE ANALYZER IF NOT EXISTS \(analyzer) TOKENIZERS blank, class, camel, punct FILTERS lowercase, ascii, snowball(english)"

    /// A words record's fields, selected from the repo table (`id AS repo, ... AS title, ...`).
    /// Any value the collector stored reads as text (a missing one as nothing, not as `NONE`).
    /// The name also in lower case: `tomlkit` typed finds `TomlKit`, which the analyzer splits.
    static func selection(dialect: SurrealDialect) -> String {
        func text(_ path: String) -> String { "<string>(\(path) ?? '')" }
        return """
            \(record(of: "id", dialect: dialect)) AS id, id AS repo, \
            string::concat(\(text("name")), ' ', string::lowercase(\(text("name"))), ' ', \(text("owner.login")), ' ', \(text("full_name"))) AS title, \
            string::concat(\(text("description")), ' ', \(text("topics")), ' ', \(text("language"))) AS body, \
            string::lowercase(\(text("language"))) AS language
            """
    }

    /// The words record of the repo `id` (an expression).
    static func record(of id: String, dialect: SurrealDialect) -> String {
        "\(dialect.recordFunction)('\(table)', record::id(\(id)))"
    }

    /// Notes that the repo `id`'s words changed (in the repo event).
    static func noteChange(_ id: String) -> String {
        "CREATE \(changes) SET repo = \(id) RETURN NONE"
    }

    /// The full-text indexes. Over many words (`concurrently`), built by the engine in the
    /// background while the task goes on with the notes, and search waits for `ready`
    /// (``SurrealStore/wordsIndexReady()``); over a few, built in the statement (ready when it
    /// returns). Only embed-star writes the words, so a build never holds up a collector.
    static func indexDefinitions(dialect: SurrealDialect, concurrently: Bool) -> [String] {
        searched.map { field in
            "DEFINE INDEX IF NOT EXISTS \(table)_\(field.field) ON \(table) FIELDS \(field.field) \(dialect.fullTextClause) \(analyzer) BM25"
                + (concurrently ? " CONCURRENTLY" : "")
        }
    }

    /// The query's words in groups, one per word typed: each group the forms that may match it
    /// (the word in lower case, and as typed when it has capitals, which the analyzer splits
    /// at case changes: `TomlKit` is `toml` and `kit`). Words ``Words/queryTerms(_:)`` drops
    /// (stop words beside others) are left out; at most 8 groups.
    static func groups(_ query: String) -> [[String]] {
        let kept = Set(Words.queryTerms(query))
        var groups: [[String]] = []
        for typed in query.split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            let word = typed.lowercased()
            guard kept.contains(word) else { continue }
            let group = String(typed) == word ? [word] : [word, String(typed)]
            if !groups.contains(group) { groups.append(group) }
        }
        return Array(groups.prefix(8))
    }
}

extension SurrealStore {
    /// Repos stored before migration 8 added per chunk, and change notes handled per chunk.
    static let wordsChunk = 2_000
    /// How long the instance keeping the words keeps the job to itself after a chunk.
    static let wordsHold: Duration = .seconds(30)
    /// How often the task looks for new change notes when it found none.
    static let wordsPoll: Duration = .milliseconds(500)

    enum WordsStep: Equatable {
        /// A full chunk was done: more may be waiting.
        case more
        /// Nothing (or less than a chunk) was waiting.
        case idle
        /// Another instance keeps the words: look again later.
        case heldByAnother
    }

    /// One step of keeping the words (``LexicalWords``), one transaction, one instance at a time
    /// (`keeper` in `embed_star_meta:words`, held for ``wordsHold`` after each chunk that did
    /// something):
    /// - while the repos stored before migration 8 are not all in, the next chunk of them
    ///   after the cursor (`INSERT IGNORE`: words already written from a note are as new);
    /// - then, once, the full-text indexes are defined (built by the engine in the background);
    /// - then the change notes: the noted repos' words are written again from the repos as they
    ///   are now (a deleted repo's removed), and the notes handled are deleted. (An update, not
    ///   a delete and an insert: 3.2 refuses an insert of a record deleted earlier in the
    ///   transaction, "already exists".) A repo changed
    ///   again meanwhile has a new note, handled by the next step.
    /// A process killed mid-step leaves everything as the last step ended.
    func keepWords() async throws -> WordsStep {
        let dialect = try await dialect()
        let selection = LexicalWords.selection(dialect: dialect)
        let expected = wordsCursor.withLock { $0 }
        // On 2.x the chunks read record ranges in the engine's key order, from the start too (as
        // the sweep does): mixing it with `ORDER BY id` would read some keys of mixed kinds twice.
        let fill = dialect.sweepsByRange
            ? "ELSE IF $cursor = $expected { (SELECT \(selection) FROM $range LIMIT $n) } ELSE IF $cursor = NONE { (SELECT \(selection) FROM \(table) ORDER BY id LIMIT $n) } ELSE { (SELECT \(selection) FROM \(table) WHERE id > $cursor ORDER BY id LIMIT $n) }"
            : "ELSE IF $cursor = NONE { (SELECT \(selection) FROM \(table) ORDER BY id LIMIT $n) } ELSE { (SELECT \(selection) FROM \(table) WHERE id > $cursor ORDER BY id LIMIT $n) }"
        let words = LexicalWords.table, changes = LexicalWords.changes, record = dialect.recordFunction
        var variables: [String: SurrealValue] = [
            "owner": .string(instanceID), "n": .int(Int64(Self.wordsChunk)), "hold": .duration(SurrealDuration(Self.wordsHold)),
        ]
        if dialect.sweepsByRange {
            variables["expected"] = expected ?? .none
            variables["range"] = Self.range(of: table, after: expected)
        }
        // (3.x gives a block's one-element array as the element: `array::flatten([...])`.
        // Closures see only their parameter on 2.x, and an IF nested in a block gives NONE
        // there: one `ELSE IF` chain.)
        let answer = try await retryingConflicts {
            try await client.query("""
                BEGIN TRANSACTION;
                LET $s = (SELECT * FROM ONLY \(LexicalWords.progress));
                LET $free = $s.keeper = NONE OR $s.keeper = $owner OR $s.keeper_until < time::now();
                LET $filling = $free AND $s != NONE AND $s.finished = false;
                LET $cursor = $s.cursor;
                LET $rows = array::flatten([IF !$filling { [] } \(fill)]);
                IF array::len($rows) > 0 { INSERT IGNORE INTO \(words) $rows RETURN NONE; };
                LET $notes = array::flatten([IF !$free OR $filling { [] } ELSE { (SELECT id, repo FROM \(changes) LIMIT $n) }]);
                LET $noted = array::distinct($notes.repo);
                IF array::len($noted) > 0 {
                    LET $now = array::flatten([(SELECT \(selection) FROM $noted)]);
                    IF array::len($now) > 0 {
                        INSERT INTO \(words) $now ON DUPLICATE KEY UPDATE repo = $input.repo, title = $input.title, body = $input.body,
                            language = $input.language RETURN NONE;
                    };
                    LET $gone = array::complement($noted, $now.repo);
                    IF array::len($gone) > 0 { DELETE $gone.map(|$r| \(record)('\(words)', record::id($r))) RETURN NONE; };
                    DELETE $notes.id RETURN NONE;
                };
                LET $done = array::len($rows) + array::len($notes);
                LET $after = IF !$free OR (!$filling AND $done = 0) { $s } ELSE {
                    (UPSERT ONLY \(LexicalWords.progress) SET cursor = array::last($rows).repo ?? cursor,
                        finished = finished = true OR ($filling AND array::len($rows) < $n),
                        added = (added ?? 0) + array::len($rows), rewritten = (rewritten ?? 0) + array::len($noted),
                        keeper = $owner, keeper_until = time::now() + $hold, kept_at = time::now()) };
                COMMIT TRANSACTION;
                RETURN { free: $free, filling: $filling, done: $done, progress: $after };
                """, variables)
        }
        let result = answer.last ?? .none
        let progress = result["progress"] ?? .none
        if let cursor = progress["cursor"], !cursor.isAbsent { wordsCursor.withLock { $0 = cursor } }
        guard result["free"]?.bool == true else { return .heldByAnother }
        if result["filling"]?.bool == true {
            logger.debug("words of stored repos added", metadata: ["added": "\(progress["added"]?.int ?? 0)"])
            if progress["finished"]?.bool != true { return .more }
        }
        if progress["finished"]?.bool == true, !wordsIndexesDefined.withLock({ $0 }) {
            // Instances finishing together conflict on the definitions: the loser reads them again.
            let many = (progress["added"]?.int ?? 0) > Self.wordsChunk
            _ = try await retryingConflicts {
                try await client.query(LexicalWords.indexDefinitions(dialect: dialect, concurrently: many).joined(separator: ";\n"))
            }
            wordsIndexesDefined.withLock { $0 = true }
            if result["filling"]?.bool == true {
                logger.info("every stored repo's words are in; the engine builds the full-text indexes", metadata: ["repos": "\(progress["added"]?.int ?? 0)"])
            }
        }
        return (result["done"]?.int ?? 0) >= Self.wordsChunk ? .more : .idle
    }

    /// Keeps the words in a task of the store's, started by ``prepare()`` and ended by
    /// ``shutdown()``: steps one after another while there is more, a pause when idle or another
    /// instance keeps them; a failed step is tried again after a pause (the server may be down).
    func startKeepingWords() {
        wordsTask.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                var failures = 0
                while !Task.isCancelled, let store = self {
                    do {
                        switch try await store.keepWords() {
                        case .more: break
                        case .idle: try await Task.sleep(for: Self.wordsPoll)
                        case .heldByAnother: try await Task.sleep(for: .seconds(5))
                        }
                        failures = 0
                    } catch {
                        if Task.isCancelled { return }  // shut down mid-step
                        failures += 1
                        store.logger.warning("keeping the words of lexical search failed; trying again", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .seconds(min(60, 1 << min(failures, 6))))
                    }
                }
            }
        }
    }

    /// Whether both full-text indexes are built (remembered once they are: an index stays built).
    func wordsIndexReady() async throws -> Bool {
        if wordsReady.withLock({ $0 }) { return true }
        let answer: [SurrealValue]
        do {
            answer = try await client.query(LexicalWords.searched.map { "INFO FOR INDEX \(LexicalWords.table)_\($0.field) ON \(LexicalWords.table)" }.joined(separator: ";\n"))
        } catch let error as SurrealError where error.kind == .statement && error.message.contains("does not exist") {
            return false  // not defined yet: the words are still being added
        }
        let ready = answer.count == LexicalWords.searched.count && answer.allSatisfy { $0["building"]?["status"]?.string == "ready" }
        if ready { wordsReady.withLock { $0 = true } }
        return ready
    }

    /// Lexical search on the words' full-text indexes: repos with every word typed first (each
    /// word in either field, in any of its forms: ``LexicalWords/groups(_:)``), then, when they
    /// are fewer than `limit`, repos with any. The score is the weighted sum of the engine's
    /// BM25 scores of the matches (`title` 3, `body` 1). One word per match clause: a clause of
    /// several words matches only a field holding them all. Until the indexes are built (a
    /// database filled before migration 8), it throws ``LexicalSearchUnsupported`` saying so,
    /// and search ranks by the vector alone.
    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        let groups = LexicalWords.groups(query)
        guard limit > 0, !groups.isEmpty else { return [] }
        guard try await wordsIndexReady() else {
            let progress = try await client.query("SELECT * FROM ONLY \(LexicalWords.progress)").last ?? .none
            let state = progress["finished"]?.bool == false
                ? "the words of the repos stored before it are being added (\(progress["added"]?.int ?? 0) so far)"
                : "the engine is building its full-text indexes"
            throw LexicalSearchUnsupported(store: "SurrealDB", reason: "lexical search is not ready yet: \(state)")
        }
        let first = try await lexicalTier(groups, every: true, limit: limit, language: filter.language)
        guard first.count < limit, groups.count > 1 else { return first }
        let more = try await lexicalTier(groups, every: false, limit: limit + first.count, language: filter.language)
        return SearchHit.tiered(first, then: more, limit: limit)
    }

    private func lexicalTier(_ groups: [[String]], every: Bool, limit: Int, language: String?) async throws -> [SearchHit] {
        var variables: [String: SurrealValue] = ["limit": .int(Int64(limit))]
        var clauses: [[String]] = []
        var scores: [String] = []
        var reference = 0
        for (index, group) in groups.enumerated() {
            var matches: [String] = []
            for (form, text) in group.enumerated() {
                variables["w\(index)_\(form)"] = .string(text)
                for field in LexicalWords.searched {
                    matches.append("\(field.field) @\(reference)@ $w\(index)_\(form)")
                    scores.append("(search::score(\(reference)) ?? 0) * \(field.weight)")
                    reference += 1
                }
            }
            clauses.append(matches)
        }
        var condition = every
            ? clauses.map { "(\($0.joined(separator: " OR ")))" }.joined(separator: " AND ")
            : "(\(clauses.flatMap { $0 }.joined(separator: " OR ")))"
        if let language {
            condition += " AND language = $language"
            variables["language"] = .string(language.lowercased())
        }
        let answer = try await client.query("""
            LET $hits = (SELECT repo, \(scores.joined(separator: " + ")) AS score FROM \(LexicalWords.table) WHERE \(condition) ORDER BY score DESC LIMIT $limit);
            RETURN [$hits, array::flatten([IF array::len($hits) = 0 { [] } ELSE { (SELECT * OMIT embedding FROM $hits.repo) }])];
            """, variables)
        // (3.x gives a block's one-element array as the element: flattened above.)
        guard let pair = answer.last?.array, pair.count == 2 else { return [] }
        var repos: [SurrealValue: Repo] = [:]
        for row in pair[1].array ?? [] {
            guard let id = row["id"], case .success(let repo) = Repo.decode(row.json, fallbackName: "search result") else { continue }
            repos[id] = repo
        }
        // In the order of the scores; a repo deleted since its words were read is left out.
        return (pair[0].array ?? []).compactMap { hit in
            guard let id = hit["repo"], let repo = repos[id] else { return nil }
            let score: Double = switch hit["score"] {
            case .double(let value)?: value
            case .int(let value)?: Double(value)
            default: 0
            }
            return SearchHit(repo: repo, score: score)
        }
    }
}
