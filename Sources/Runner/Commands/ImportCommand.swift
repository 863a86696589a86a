import ArgumentParser
import EmbedStarCore
import Foundation

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Load repos from GitHub's starred-repositories JSON (gh api --paginate user/starred > stars.json) into the store.",
        discussion: "Repos are upserted by GitHub id (record repo:<id>): a new or changed repo becomes pending; bad entries are reported and skipped."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The JSON files ('-' for standard input).")
    var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one JSON file ('-' for standard input)") }
    }

    func run() async throws {
        try await runCommand { logger in
            var parsed: (repos: [Repo], rejected: [RecordError]) = ([], [])
            for file in files {
                let data: Data
                do {
                    data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
                } catch {
                    throw CLIError.failure("cannot read \(file): no such file or not readable")
                }
                do {
                    let one = try GitHubStarred.parse(data, source: file == "-" ? "stdin" : URL(fileURLWithPath: file).lastPathComponent)
                    parsed.repos += one.repos
                    parsed.rejected += one.rejected
                } catch let error as RecordError {
                    throw CLIError.failure("\(error)")
                }
            }
            let store = try await options.withRuntime(logger: logger) { runtime in
                try await runtime.store.prepare()
                try await runtime.store.upsert(parsed.repos)
                return runtime.configuration.settings.store
            }
            for problem in parsed.rejected.prefix(10) {
                FileHandle.standardError.write(Data("skipped \(problem)\n".utf8))
            }
            if parsed.rejected.count > 10 {
                FileHandle.standardError.write(Data("... and \(parsed.rejected.count - 10) more\n".utf8))
            }
            print("Imported \(parsed.repos.count) repos into \(store); skipped \(parsed.rejected.count) bad entries.")
        }
    }
}
