import EmbedStarApp
import ArgumentParser
import EmbedStarCore
import Foundation

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Load repos from GitHub's starred-repositories JSON (gh api --paginate user/starred > stars.json, or one repo per line) into the store.",
        discussion: "Repos are upserted by GitHub id (record repo:<id>): a new or changed repo becomes pending; bad entries are reported and skipped."
    )

    @OptionGroup var options: ConfigOptions

    /// Repos upserted at a time.
    static let chunk = 500

    /// Upserts `repos` in chunks, so a failure half-way says what was written: at least the
    /// chunks before it, in file order (a store may have written part of the failed chunk).
    static func upsert(_ repos: [Repo], into store: any RepoStore) async throws {
        var written = 0
        for start in stride(from: 0, to: repos.count, by: chunk) {
            let part = Array(repos[start..<min(start + chunk, repos.count)])
            do {
                try await store.upsert(part)
            } catch {
                let through = written > 0 ? " (through \(repos[written - 1].fullName), in file order)" : ""
                throw CLIError.failure("the import stopped after \(written) of \(repos.count) repos were written\(through): \(error)\n"
                    + "up to \(part.count) more may be written, the \(repos.count - written - part.count) after them were not; "
                    + "importing the same files again is safe (repos are upserted by id)")
            }
            written += part.count
        }
    }

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
            let repos = parsed.repos
            let store = try await options.withRuntime(logger: logger) { runtime in
                _ = try await runtime.openStore(settingUp: true)
                try await Self.upsert(repos, into: runtime.store)
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
