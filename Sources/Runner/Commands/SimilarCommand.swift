import ArgumentParser
import EmbedStarApp
import EmbedStarCore
import Foundation

/// `embed-star similar REPO`: the repos nearest one you name, by its stored vector.
struct SimilarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similar",
        abstract: "The repos nearest one you name (repo:123 or owner/name), by its stored vector; itself left out.",
        discussion: """
            Embeds nothing: the named repo's stored vector is compared with the others of its model, \
            the configured one (the provider asked which, for at most 5 s) or else the one the store \
            last served.
            """
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The repo: its record id (repo:123) or owner/name.")
    var repo: String

    @Option(name: .long, help: "How many repos.")
    var limit = 10

    @Option(name: .long, help: "Only repos in this language.")
    var language: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard !repo.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("name a repo") }
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        try await runCommand { logger in
            let hits = try await options.withRuntime(logger: logger) { runtime in
                let schema = try await runtime.openStore()
                let model = await runtime.statusModel(schema)
                guard let identity = model.identity else {
                    throw CLIError.failure("no model to compare with: \(model.note ?? "the provider did not answer and the store has served none")")
                }
                let found = try await runtime.store.find(repo, modelIdentity: identity)
                guard let named = found.first else { throw CLIError.failure("no repo \(repo) in the store") }
                guard found.count == 1 else {
                    throw CLIError.failure("\(repo) names \(found.count) repos (\(found.map(\.repo.id.rawValue).joined(separator: ", "))): name one by its id")
                }
                guard let vector = named.embedding, named.embeddingModel == identity else {
                    throw CLIError.failure("\(named.repo.fullName) has no vector of \(identity) yet (\(named.state.rawValue)); `embed-star inspect \(repo)` says why")
                }
                let nearest = try await runtime.store.nearest(to: vector, limit: limit + 1,
                                                              filter: SearchFilter(language: language, modelIdentity: identity))
                return nearest.filter { $0.repo.id != named.repo.id }.prefix(limit).enumerated().map { index, hit in
                    FusedHit(repo: hit.repo, score: hit.score, vectorRank: index + 1, vectorScore: hit.score, exactName: false)
                }
            }
            try SearchCommand.show(hits, mode: .vector, json: json)
        }
    }
}
