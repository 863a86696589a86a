import EmbedStarApp
import ArgumentParser
import EmbedStarCore
import Foundation

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Find your stars by meaning: embeds the query and lists the nearest repos."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "What you are looking for, in words (\"a small TOML parser in Rust\").")
    var query: String

    @Option(name: .long, help: "How many repos.")
    var limit = 10

    @Option(name: .long, help: "Only repos in this language.")
    var language: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard !query.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("the query is empty") }
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        try await runCommand { logger in
            let hits = try await options.withRuntime(logger: logger) { runtime in
                _ = try await runtime.openStore()
                let document = try await runtime.document()
                let vector = try await runtime.provider.embed([document.query(query)], mode: .query)
                guard let first = vector.first else { throw CLIError.failure("the provider returned no vector for the query") }
                return try await runtime.store.nearest(to: first, limit: limit, filter: SearchFilter(language: language, modelIdentity: document.modelIdentity))
            }
            if json {
                let rows: [[String: Any]] = hits.map { hit in
                    var row: [String: Any] = ["score": (hit.score * 10_000).rounded() / 10_000, "full_name": hit.repo.fullName,
                                              "id": hit.repo.id.rawValue, "stars": hit.repo.stars]
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
                print("No embedded repos to search yet (run `embed-star backfill` first).")
                return
            }
            let nameWidth = min(40, hits.map(\.repo.fullName.count).max() ?? 10)
            print("score  \("repo".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  language    stars  description")
            for hit in hits {
                let name = String(hit.repo.fullName.prefix(nameWidth)).padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                let language = String((hit.repo.language ?? "-").prefix(10)).padding(toLength: 10, withPad: " ", startingAt: 0)
                let stars = String(hit.repo.stars)
                let padded = String(repeating: " ", count: max(0, 6 - stars.count)) + stars
                print(String(format: "%.3f", hit.score) + "  \(name)  \(language)  \(padded)  \((hit.repo.description ?? "").prefix(70))")
            }
        }
    }
}
