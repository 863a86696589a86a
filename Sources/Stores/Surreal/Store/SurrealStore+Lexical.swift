import EmbedStarCore
import Foundation
import Logging
import SurrealClient

/// Each repo's words for lexical search, in a table of their own, `embed_star_words`, keyed like
/// the repo (`embed_star_words:⟨key⟩` for `repo:⟨key⟩`, every key kind), in two fields with an
/// index each: `title` (the name as written and in lower case, the owner, the full name) and
/// `body` (description, topics, language). On 3.x the fields hold the text and the indexes are
/// full-text indexes (BM25 in the engine); on 2.x they hold the analyzer's terms
/// (`search::analyze`, punctuation left out) and the indexes are plain ones, which find the
/// records holding a term, and embed-star ranks them by BM25 (``SurrealDialect/keepsWordsAsTerms``).
///
/// Only embed-star writes them, one instance at a time (``SurrealStore/keepWords()``): the repo
/// event notes a repo whose words changed (`embed_star_words_change`, a new record per note),
/// and embed-star rewrites the words of the noted repos within seconds (at most 4 s idle). Not written by
/// the event itself, nor indexes on the repo table: SurrealDB 2.3's full-text index makes
/// concurrent writes conflict (measured: 6 writers, 289 of 600 writes failed with a conflict;
/// none without the index), so the collector's writes would fail, and 2.3 re-indexes a record's
/// full-text fields on every write of it, vectors included (a 2,000-repo backfill took 338 s
/// with them). The repos stored before the words' migration are added in chunks by the same
/// task, and the indexes are defined once they are all there: the engines build an index over
/// a filled table in one pass, several times faster than record by record.
enum LexicalWords {
    static let table = "embed_star_words"
    /// Notes of repos whose words changed, written by the repo event.
    static let changes = "embed_star_words_change"
    static let analyzer = "embed_star_words"
    /// The words' progress: `cursor` (the last stored repo added), `finished`, `added`,
    /// `rewritten`, and the instance keeping them (`keeper`, until `keeper_until`).
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
    /// On 2.x `title` and `body` are the text's terms (``terms(_:)``).
    static func selection(dialect: SurrealDialect) -> String {
        func text(_ path: String) -> String { "<string>(\(path) ?? '')" }
        let title = "string::concat(\(text("name")), ' ', string::lowercase(\(text("name"))), ' ', \(text("owner.login")), ' ', \(text("full_name")))"
        let body = "string::concat(\(text("description")), ' ', \(text("topics")), ' ', \(text("language")))"
        return """
            \(record(of: "id", dialect: dialect)) AS id, id AS repo, \
            \(dialect.keepsWordsAsTerms ? terms(title) : title) AS title, \
            \(dialect.keepsWordsAsTerms ? terms(body) : body) AS body, \
            string::lowercase(\(text("language"))) AS language
            """
    }

    /// The analyzer's terms of the text `expression` (2.x), without the punctuation the
    /// analyzer keeps as terms of their own (`rust-serde` is `rust`, `-`, `serd`), and without
    /// the spaces its ASCII filter writes into a word it transliterates (`中文` is `zhong wen `:
    /// `zhongwen`, not dropped).
    static func terms(_ expression: String) -> String {
        "array::filter(array::map(search::analyze('\(analyzer)', \(expression)), |$t| string::replace($t, ' ', '')), |$t| string::is::alphanum($t))"
    }

    /// The words record of the repo `id` (an expression).
    static func record(of id: String, dialect: SurrealDialect) -> String {
        "\(dialect.recordFunction)('\(table)', record::id(\(id)))"
    }

    /// Notes that the repo `id`'s words changed (in the repo event).
    static func noteChange(_ id: String) -> String {
        "CREATE \(changes) SET repo = \(id) RETURN NONE"
    }

    /// The words' indexes, built in the statement (ready when it returns: 2.3 s for 10,000
    /// repos on 3.2.4). Only the keeping task writes the words, so a build holds up no
    /// collector. Full-text indexes on 3.x; plain indexes of the terms on 2.x (an array field's
    /// index lists the record under each of its elements).
    static func indexDefinitions(dialect: SurrealDialect) -> [String] {
        searched.map { field in
            "DEFINE INDEX IF NOT EXISTS \(table)_\(field.field) ON \(table) FIELDS \(field.field)"
                + (dialect.keepsWordsAsTerms ? "" : " FULLTEXT ANALYZER \(analyzer) BM25")
        }
    }

    /// The query's words in groups, one per word typed: each group the forms that may match it
    /// (the word in lower case, and as typed when it changes case inside, which the analyzer
    /// splits: `TomlKit` is `toml` and `kit`, and the lower case `tomlkit` the name's own). Words ``Words/queryTerms(_:)`` drops
    /// (stop words beside others) are left out; at most `limit` groups (3.x: 8, each costing
    /// the engine a score per form and field; 2.x: 32, all its terms in one index lookup).
    static func groups(_ query: String, limit: Int = 8) -> [[String]] {
        let kept = Set(Words.queryTerms(query))
        var groups: [[String]] = []
        for typed in query.split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            let word = typed.lowercased()
            guard kept.contains(word) else { continue }
            // The typed form only when the analyzer splits it (`TomlKit`); `Rust` is `rust`.
            let group = Words.plain(String(typed)).count > 1 ? [word, String(typed)] : [word]
            if !groups.contains(group) { groups.append(group) }
        }
        return Array(groups.prefix(limit))
    }
}

extension SurrealStore {
    /// Repos stored before the words' migration added per chunk (before the word indexes exist).
    static let wordsChunk = 2_000
    /// Change notes handled per step once the word indexes exist. Small: 3.2.4's cost of
    /// one transaction's writes to a table with `FULLTEXT` indexes grows faster than its size
    /// (two indexes, 2,000 records in one insert: 12 s and the server from 0.1 to 10.9 GB
    /// resident, killed for memory in a run; 1,000: 2.2 s; 500: 0.54 s; 200: 0.14 s; 100: 0.1 s).
    static let wordsNotesChunk = 100
    /// How often a keeper whose indexes were built looks whether they still exist.
    static let wordsIndexCheckEvery: Duration = .seconds(15)
    /// How long the instance keeping the words keeps the job to itself after a chunk.
    static let wordsHold: Duration = .seconds(30)
    /// How often the task looks for new change notes: after a step that found some, at once;
    /// after idle ones, every 250 ms, doubling up to 4 s (an idle fleet, and a test process
    /// with many stores, costs the server little).
    static let wordsPoll: (first: Duration, longest: Duration) = (.milliseconds(250), .seconds(4))

    enum WordsStep: Equatable {
        /// A full chunk was done: more may be waiting.
        case more
        /// Nothing (or less than a chunk) was waiting.
        case idle
        /// Another instance keeps the words: look again later.
        case heldByAnother
    }

    /// One step of keeping the words (``LexicalWords``), one transaction, one instance at a time
    /// (`keeper` in `embed_star_meta:words`, held for ``wordsHold`` after each chunk, and renewed
    /// by an idle keeper a third of the way through: two keepers rewriting the same notes could
    /// leave older words last on a storage that lets both writes commit):
    /// - while the repos stored before the words' migration are not all in, the next chunk of them
    ///   after the cursor (`INSERT IGNORE`: a chunk read again after a takeover adds nothing);
    /// - then, once, the word indexes are defined, built in the statement (a crash
    ///   mid-build leaves no index, and the next step defines it again; the engine's
    ///   background build would be reported `ready` after a server restart cut it short);
    /// - then the change notes: the noted repos' words are written again from the repos as they
    ///   are now (a deleted repo's removed), and the notes handled are deleted. (An update, not
    ///   a delete and an insert: 3.2 refuses an insert of a record deleted earlier in the
    ///   transaction, "already exists".) A repo changed
    ///   again meanwhile has a new note, handled by the next step.
    /// - and, once they were built, at most every ``wordsIndexCheckEvery``, whether they still
    ///   exist (removed by hand, a restore): if not, they are defined again.
    /// A process killed mid-step leaves everything as the last step ended.
    func keepWords() async throws -> WordsStep {
        if wordsReady.withLock({ $0 }), Self.due(wordsIndexCheckedAt, every: Self.wordsIndexCheckEvery), !(try await wordsIndexesBuilt()) {
            logger.warning("the word indexes of lexical search are gone; defining them again")
            wordsReady.withLock { $0 = false }
        }
        let dialect = try await dialect()
        let selection = LexicalWords.selection(dialect: dialect)
        if dialect.sweepsByRange, wordsCursor.withLock({ $0 }) == nil {
            // This process's first step reads on from the stored cursor by range too (2.x):
            // mixing the range's key order with `ORDER BY id` could skip keys of mixed kinds.
            let stored = try await client.query("SELECT VALUE cursor FROM ONLY \(LexicalWords.progress)").last ?? .none
            if !stored.isAbsent { wordsCursor.withLock { $0 = stored } }
        }
        let expected = wordsCursor.withLock { $0 }
        // On 2.x the chunks read record ranges in the engine's key order, from the start too (as
        // the sweep does): mixing it with `ORDER BY id` would read some keys of mixed kinds twice.
        let fill = dialect.sweepsByRange
            ? "ELSE IF $cursor = $expected { (SELECT \(selection) FROM $range LIMIT $n) } ELSE IF $cursor = NONE { (SELECT \(selection) FROM \(table) ORDER BY id LIMIT $n) } ELSE { (SELECT \(selection) FROM \(table) WHERE id > $cursor ORDER BY id LIMIT $n) }"
            : "ELSE IF $cursor = NONE { (SELECT \(selection) FROM \(table) ORDER BY id LIMIT $n) } ELSE { (SELECT \(selection) FROM \(table) WHERE id > $cursor ORDER BY id LIMIT $n) }"
        let words = LexicalWords.table, changes = LexicalWords.changes, record = dialect.recordFunction
        var variables: [String: SurrealValue] = [
            "owner": .string(instanceID), "n": .int(Int64(Self.wordsChunk)), "m": .int(Int64(Self.wordsNotesChunk)), "hold": .duration(SurrealDuration(Self.wordsHold)),
            "renewal": .duration(SurrealDuration(Self.wordsHold * 2 / 3)),
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
                LET $notes = array::flatten([IF !$free OR $filling { [] } ELSE { (SELECT id, repo FROM \(changes) LIMIT $m) }]);
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
                LET $renew = $s.keeper != $owner OR $s.keeper_until < time::now() + $renewal;
                LET $after = IF !$free OR (!$filling AND $done = 0 AND !$renew) { $s } ELSE {
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
        if progress["finished"]?.bool == true, !wordsReady.withLock({ $0 }) {
            // Instances finishing together conflict on the definitions: the loser reads them again.
            let started = ContinuousClock.now
            _ = try await retryingConflicts {
                try await client.query(LexicalWords.indexDefinitions(dialect: dialect).joined(separator: ";\n"))
            }
            wordsReady.withLock { $0 = true }  // built by the statement that defined them
            if result["filling"]?.bool == true || ContinuousClock.now - started > .seconds(1) {
                logger.info("lexical search is ready: the word indexes are built", metadata: [
                    "repos": "\(progress["added"]?.int ?? 0)", "seconds": "\((ContinuousClock.now - started).components.seconds)",
                ])
            }
        }
        // Right after the fill (the notes made meanwhile wait) or a full chunk: more.
        return result["filling"]?.bool == true || (result["done"]?.int ?? 0) >= Self.wordsNotesChunk ? .more : .idle
    }

    /// Keeps the words in a task of the store's, started by ``prepare()`` and ended by
    /// ``shutdown()``: steps one after another while there is more, a pause when idle or another
    /// instance keeps them; a failed step is tried again after a pause (the server may be down).
    func startKeepingWords() {
        wordsTask.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                var failures = 0
                var idle = Self.wordsPoll.first
                while !Task.isCancelled, let store = self {
                    do {
                        switch try await store.keepWords() {
                        case .more:
                            idle = Self.wordsPoll.first
                        case .idle:
                            try await Task.sleep(for: idle)
                            idle = min(idle * 2, Self.wordsPoll.longest)
                        case .heldByAnother:
                            try await Task.sleep(for: .seconds(5))
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

    /// Whether both word indexes exist (defined only built: ``keepWords()``); remembered
    /// once they do, and forgotten when a search finds them gone (``lexicalSearch``).
    func wordsIndexReady() async throws -> Bool {
        if wordsReady.withLock({ $0 }) { return true }
        let ready = try await wordsIndexesBuilt()
        if ready { wordsReady.withLock { $0 = true } }
        return ready
    }

    /// Whether both word indexes exist and are built, asked of the database now.
    func wordsIndexesBuilt() async throws -> Bool {
        let answer: [SurrealValue]
        do {
            answer = try await client.query(LexicalWords.searched.map { "INFO FOR INDEX \(LexicalWords.table)_\($0.field) ON \(LexicalWords.table)" }.joined(separator: ";\n"))
        } catch let error as SurrealError where error.kind == .statement && error.message.contains("does not exist") {
            return false  // not defined yet: the words are still being added
        }
        return answer.count == LexicalWords.searched.count && answer.allSatisfy { $0["building"]?["status"]?.string == "ready" }
    }

    /// From what the database holds, never from this process's memory: the words records and
    /// the change notes counted, the fill's progress record (made by the words' migration with
    /// `finished = false`; the instance keeping the words and its last step), and whether both
    /// word indexes exist now (they are defined only built). Neither indexes nor a progress
    /// record means the words were never set up here (a 3.x database whose migration 8 ran on
    /// a 2.x server, which then set no words up): `unavailable`.
    public func lexicalStatus() async throws -> LexicalStatus {
        let built = try await wordsIndexesBuilt()
        // Without the progress record (and the indexes) the words' tables may not exist: 3.x
        // refuses a select from a table that does not.
        let progress = try await client.query("SELECT finished, keeper, kept_at FROM ONLY \(LexicalWords.progress)").last ?? .none
        guard built || progress["finished"]?.bool != nil else {
            return LexicalStatus(state: .unavailable, detail: "no words are kept: the database has no record of them (embed_star_meta:words), as when its schema 8 was applied by SurrealDB 2.x before embed-star kept words there")
        }
        let answer = try await client.query("""
            RETURN [
              (SELECT count() FROM \(LexicalWords.table) GROUP ALL)[0].count ?? 0,
              (SELECT count() FROM \(LexicalWords.changes) GROUP ALL)[0].count ?? 0
            ];
            """).last?.array ?? []
        guard answer.count == 2 else { throw SurrealError(.protocolViolation, "the lexical search counts came back incomplete") }
        let indexed = Int(answer[0].int ?? 0), waiting = Int(answer[1].int ?? 0)
        if built {
            return LexicalStatus(state: .ready, indexed: indexed, waiting: waiting)
        }
        // Who does the work, as recorded: the last step's instance and time, or none yet.
        let keeper: String
        if case .datetime(let at)? = progress["kept_at"] {
            keeper = "last step by instance \(progress["keeper"]?.string ?? "(released)") at \(at.date.formatted(.iso8601))"
        } else {
            keeper = "no instance has kept them yet (a running embed-star, run or backfill, does)"
        }
        return progress["finished"]?.bool == true
            ? LexicalStatus(state: .building, indexed: indexed, waiting: waiting, detail: "every stored repo's words are in; the word indexes are built next: \(keeper)")
            : LexicalStatus(state: .filling, indexed: indexed, waiting: waiting, detail: "the words of the repos stored before lexical search are being added: \(keeper)")
    }

    /// Lexical search on the words' indexes: repos with every word typed first (each word in
    /// any of its forms: ``LexicalWords/groups(_:limit:)``), then, when they are fewer than
    /// `limit`, repos with any. On 3.x (``lexicalTier``) a word matches a field holding it
    /// (a form of several words, only a field holding them all), and the score is the
    /// weighted sum of the engine's BM25 scores of the matches (`title` 3, `body` 1). On 2.x
    /// (``termsSearch``) embed-star ranks by BM25 over the whole record, the fields weighted
    /// the same (``WordsMatch/rank(_:forms:statistics:documents:weights:)``). Until the indexes
    /// are built (a database filled before the words' migration), it throws
    /// ``LexicalSearchUnsupported`` saying so, and search ranks by the vector alone.
    public func lexicalSearch(_ query: String, limit: Int, filter: SearchFilter) async throws -> [SearchHit] {
        let dialect = try await dialect()
        let groups = LexicalWords.groups(query, limit: dialect.keepsWordsAsTerms ? 32 : 8)
        guard limit > 0, !groups.isEmpty else { return [] }
        guard try await wordsIndexReady() else {
            // What `status` says: the words counted, and who adds them.
            throw LexicalSearchUnsupported(store: "SurrealDB", reason: "lexical search is not ready yet: \(try await lexicalStatus().line)")
        }
        do {
            if dialect.keepsWordsAsTerms { return try await termsSearch(groups, limit: limit, language: filter.language) }
            let first = try await lexicalTier(groups, every: true, limit: limit, language: filter.language)
            guard first.count < limit, groups.count > 1 else { return first }
            let more = try await lexicalTier(groups, every: false, limit: limit + first.count, language: filter.language)
            return SearchHit.tiered(first, then: more, limit: limit)
        } catch let error as SurrealError where error.kind == .statement {
            // The indexes removed since they were seen (by hand, a restore): not ready, and a
            // running instance defines them again.
            wordsReady.withLock { $0 = false }
            guard try await wordsIndexReady() else {
                throw LexicalSearchUnsupported(store: "SurrealDB", reason: "lexical search is not ready: its word indexes are missing (a running embed-star defines them again)")
            }
            throw error
        }
    }

    /// Lexical search on 2.x (``SurrealDialect/keepsWordsAsTerms``): the engine analyzes the
    /// query's forms as it analyzed the repos' words, and answers every words record holding
    /// any of their terms (through the terms' indexes), with the query terms each field holds
    /// and each field's length; embed-star ranks them (``WordsMatch``). A term's document
    /// frequency is counted in that answer, which holds every record with the term: exact. The
    /// number of documents is the stored repo count (the words are the repos'); the average
    /// length is the answer's (the corpus's would take a scan of the table: it only tempers
    /// the length's weight).
    private func termsSearch(_ groups: [[String]], limit: Int, language: String?) async throws -> [SearchHit] {
        var variables: [String: SurrealValue] = [:]
        var lets: [String] = []
        var forms: [[String]] = []
        for (index, group) in groups.enumerated() {
            forms.append(group.indices.map { form in
                variables["w\(index)_\(form)"] = .string(group[form])
                lets.append("LET $f\(index)_\(form) = \(LexicalWords.terms("$w\(index)_\(form)"));")
                return "$f\(index)_\(form)"
            })
        }
        let fields = LexicalWords.searched.map(\.field)
        let answer = try await client.query("""
            \(lets.joined(separator: "\n"))
            LET $all = array::distinct(array::flatten([\(forms.flatMap { $0 }.joined(separator: ", "))]));
            LET $rows = array::flatten([IF array::len($all) = 0 { [] } ELSE {
                (SELECT repo, language, \(fields.enumerated().map { "array::intersect(\($1), $all) AS t\($0), array::len(\($1)) AS l\($0)" }.joined(separator: ", ")) \
                FROM \(LexicalWords.table) WHERE \(fields.map { "\($0) CONTAINSANY $all" }.joined(separator: " OR ")))
            }]);
            RETURN {
                forms: [\(forms.map { "[\($0.joined(separator: ", "))]" }.joined(separator: ", "))],
                rows: $rows,
                documents: math::sum((SELECT VALUE n FROM embed_star_count)) ?? 0
            };
            """, variables)
        guard let result = answer.last, let rows = result["rows"]?.array else {
            throw SurrealError(.protocolViolation, "the lexical search's answer came back incomplete")
        }
        let queryForms: [[[String]]] = (result["forms"]?.array ?? []).map { group in
            (group.array ?? []).map { ($0.array ?? []).compactMap(\.string) }.filter { !$0.isEmpty }
        }
        // Every record holding a query term (once each: frequencies count records), then those
        // of the language asked; frequencies and lengths are counted over all of them.
        var seen: Set<SurrealValue> = []
        let all: [(match: WordsMatch, language: String?)] = rows.compactMap { row in
            guard let repo = row["repo"], seen.insert(repo).inserted else { return nil }
            return (WordsMatch(repo: repo, terms: fields.indices.map { Set((row["t\($0)"]?.array ?? []).compactMap(\.string)) },
                               lengths: fields.indices.map { Double(row["l\($0)"]?.int ?? 0) }), row["language"]?.string)
        }
        let language = language?.lowercased()
        let ranked = WordsMatch.rank(all.filter { language == nil || $0.language == language }.map(\.match), forms: queryForms,
                                     statistics: all.map(\.match), documents: Double(result["documents"]?.int ?? 0),
                                     weights: LexicalWords.searched.map { Double($0.weight) })
        let first = Array(ranked.every.prefix(limit)), more = groups.count > 1 && first.count < limit ? Array(ranked.some.prefix(limit)) : []
        let repos = try await searchedRepos((first + more).map(\.repo))
        // A repo deleted since its words were read is left out.
        func hits(_ list: [(repo: SurrealValue, score: Double)]) -> [SearchHit] {
            list.compactMap { hit in repos[hit.repo].map { SearchHit(repo: $0, score: hit.score) } }
        }
        return SearchHit.tiered(hits(first), then: hits(more), limit: limit)
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
                    // BM25 can go below 0 for a word in most repos (2.x's did): a match never lowers a score.
                    scores.append("math::max([search::score(\(reference)) ?? 0, 0]) * \(field.weight)")
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
        let repos = Self.searchedRepos(pair[1].array ?? [])
        // In the order of the scores; a repo deleted since its words were read is left out.
        return (pair[0].array ?? []).compactMap { hit in
            guard let id = hit["repo"], let repo = repos[id] else { return nil }
            return SearchHit(repo: repo, score: hit["score"]?.double ?? 0)
        }
    }

    /// Gives up keeping the words (at shutdown), so another instance takes over at once.
    func releaseWords() async {
        _ = try? await client.query("UPDATE \(LexicalWords.progress) SET keeper = NONE, keeper_until = NONE WHERE keeper = $owner RETURN NONE",
                                    ["owner": .string(instanceID)])
    }

    /// The repos `ids` (record ids), by id, read for search results (their vectors left out).
    private func searchedRepos(_ ids: [SurrealValue]) async throws -> [SurrealValue: Repo] {
        guard !ids.isEmpty else { return [:] }
        return Self.searchedRepos(try await client.query("SELECT * OMIT embedding FROM $ids", ["ids": .array(ids)]).last?.array ?? [])
    }

    /// Repo records read for search results, by id; one that does not decode is left out.
    private static func searchedRepos(_ rows: [SurrealValue]) -> [SurrealValue: Repo] {
        var repos: [SurrealValue: Repo] = [:]
        for row in rows {
            guard let id = row["id"], case .success(let repo) = Repo.decode(row.json, fallbackName: "search result") else { continue }
            repos[id] = repo
        }
        return repos
    }
}
