import ArgumentParser
import EmbedStarCore
import EmbedStarApp
import Foundation

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Write realistic synthetic repo records (deterministic) as a JSON array."
    )

    @Option(name: .long, help: "How many repos.")
    var count = 1_000

    @Option(name: .long, help: "The output file ('-' for standard output).")
    var out = "-"

    @Option(name: .long, help: "Different seeds give different repos.")
    var seed: UInt64 = 1

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case collector, github
    }

    @Option(name: .long, help: "collector: records as the collector writes them (the mock store's seed file); github: GitHub's starred-repositories JSON, for `import`.")
    var format = Format.collector

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
    }

    func run() async throws {
        try await runCommand { _ in
            let repos = SyntheticRepos.generate(count: count, seed: seed)
            let data = try format == .github ? SyntheticRepos.githubJSON(repos) : SyntheticRepos.json(repos)
            if out == "-" {
                FileHandle.standardOutput.write(data)
            } else {
                do {
                    try data.write(to: URL(fileURLWithPath: out))
                } catch {
                    throw CLIError.failure("cannot write \(out): \(error.localizedDescription)")
                }
                FileHandle.standardError.write(Data("wrote \(count) repos to \(out)\n".utf8))
            }
        }
    }
}
