import EmbedStarCore

extension StoreFactory {
    /// `store: sqlite`: one file on disk, nothing to run.
    public static let sqlite = StoreFactory(
        name: "sqlite",
        summary: "one SQLite file (WAL): leases, conditional writes, cosine search (byte codes, re-scored exactly); several processes may share it",
        configuration: SQLiteStore.Configuration.self
    ) { configuration, context in
        SQLiteStore(configuration: configuration, directory: context.directory, logger: context.logger)
    }
}
