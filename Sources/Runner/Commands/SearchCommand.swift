import EmbedStarApp
import ArgumentParser
import EmbedStarCore
import Foundation

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find your stars by meaning and by name: the query's vector and its words, fused.",
        discussion: """
            --mode hybrid (the default) ranks by both the meaning (the nearest vectors) and the \
            words (BM25 over name, owner, description, topics, language), a repo the query names \
            first; --mode vector by the meaning alone, --mode lexical by the words alone (no \
            provider needed).
            """
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "What you are looking for, in words (\"a small TOML parser in Rust\").")
    var query: String

    @Option(name: .long, help: "How many repos.")
    var limit = 10

    @Option(name: .long, help: "Only repos in this language.")
    var language: String?

    @Option(name: .long, help: "hybrid (meaning and words), vector (meaning) or lexical (words).")
    var mode: SearchMode = .hybrid

    @Flag(name: .long, help: "Print JSON (with what found each hit: vector, lexical or both).")
    var json = false

    func validate() throws {
        guard !query.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("the query is empty") }
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        try await runCommand { logger in
            let (hits, lexicalUnavailable, vectorFailure) = try await options.withRuntime(logger: logger) { runtime in
                _ = try await runtime.openStore()
                // The model identity names which vectors compare with the query's; lexical
                // search needs neither the provider nor the model. A hybrid search whose provider
                // does not answer ranks by the words alone.
                var document: DocumentText?
                switch mode {
                case .lexical: document = nil
                case .vector: document = try await runtime.document()
                case .hybrid: document = try? await runtime.askDocument()?.get()
                }
                let filter = SearchFilter(language: language, modelIdentity: document?.modelIdentity)
                let found = try await HybridSearch.search(query, mode: mode, limit: limit, filter: filter, store: runtime.store) {
                    guard let document else { throw CLIError.failure("the provider did not say which model it serves") }
                    let vector = try await runtime.provider.embed([document.query(query)], mode: .query)
                    guard let first = vector.first else { throw CLIError.failure("the provider returned no vector for the query") }
                    return first
                }
                if mode == .lexical, let unavailable = found.lexicalUnavailable {
                    throw CLIError.failure(unavailable.reason.map { "\($0); use --mode vector meanwhile" }
                        ?? "the \(runtime.configuration.settings.store) store has no lexical search; use --mode vector")
                }
                return found
            }
            if mode == .hybrid, let lexicalUnavailable {
                Console.note("\(lexicalUnavailable.reason ?? "the store has no lexical search"): ranked by meaning alone")
            }
            if let vectorFailure {
                Console.note("ranked by words alone: the query could not be embedded (\(vectorFailure))")
            }
            try Self.show(hits, mode: mode, json: json)
        }
    }

    /// The hits as JSON, or as a table: in hybrid mode the cosine when the vector found the
    /// repo (`-` when only its words did) and what found it; otherwise the side's own score.
    static func show(_ hits: [FusedHit], mode: SearchMode, json: Bool) throws {
        if json {
            let rows: [[String: Any]] = hits.map { hit in
                var row: [String: Any] = ["score": (hit.score * 10_000).rounded() / 10_000, "full_name": hit.repo.fullName,
                                          "id": hit.repo.id.rawValue, "stars": hit.repo.stars, "found_by": hit.foundBy,
                                          "exact_name": hit.exactName, "name_parts": hit.nameParts]
                row["vector_rank"] = hit.vectorRank
                row["vector_score"] = hit.vectorScore.map { ($0 * 10_000).rounded() / 10_000 }
                row["lexical_rank"] = hit.lexicalRank
                row["language"] = hit.repo.language
                row["description"] = hit.repo.description
                row["url"] = hit.repo.url
                return row
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !hits.isEmpty else {
            print(mode == .lexical ? "No repo matches." : "No embedded repos to search yet (run `embed-star backfill` first).")
            return
        }
        let nameWidth = min(40, hits.map(\.repo.fullName.count).max() ?? 10)
        let hybrid = mode == .hybrid
        print("score  \(hybrid ? "by    " : "")\("repo".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  language    stars  description")
        for hit in hits {
            let name = String(hit.repo.fullName.prefix(nameWidth)).padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            let language = String((hit.repo.language ?? "-").prefix(10)).padding(toLength: 10, withPad: " ", startingAt: 0)
            let stars = String(hit.repo.stars)
            let padded = String(repeating: " ", count: max(0, 6 - stars.count)) + stars
            let score = hybrid ? hit.vectorScore.map { String(format: "%.3f", $0) } ?? "  -  " : String(format: "%.3f", hit.score)
            let by = hybrid ? foundColumn(hit) + " " : ""
            print(score + "  " + by + "\(name)  \(language)  \(padded)  \((hit.repo.description ?? "").prefix(70))")
        }
    }

    /// Five characters: `name` for a repo the query names, else `v`, `w` or `v+w` (its vector,
    /// its words, or both found it).
    static func foundColumn(_ hit: FusedHit) -> String {
        let found = hit.exactName ? "name" : hit.foundBy == ["vector", "lexical"] ? "v+w" : hit.foundBy == ["vector"] ? "v" : "w"
        return found.padding(toLength: 5, withPad: " ", startingAt: 0)
    }
}

extension SearchMode: ExpressibleByArgument {}
