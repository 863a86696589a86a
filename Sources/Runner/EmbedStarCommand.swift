import ArgumentParser
import EmbedStarBuildInfo

@main
struct EmbedStarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed-star",
        abstract: "Keeps a vector embedding on every GitHub repo record in your database.",
        discussion: """
            Configuration comes from plugins.yaml (--config), a named environment (--env or \
            EMBED_STAR_ENV), ${VAR} references to the environment or .env, and the flags below.
            """,
        version: EmbedStarVersion.current,
        subcommands: [
            RunCommand.self, BackfillCommand.self, SearchCommand.self, SimilarCommand.self, ImportCommand.self, StatusCommand.self, MigrateCommand.self, InspectCommand.self, RequeueCommand.self, RetryFailedCommand.self, ReportCommand.self,
            ConfigCommand.self, PluginsCommand.self, SeedCommand.self, ProbeCommand.self,
        ]
    )
}
