import EmbedStarCore

extension StoreFactory {
    /// `store: mock`: in memory, seeded from a JSON file, optionally saved between runs.
    public static let mock = StoreFactory(
        name: "mock",
        summary: "in-memory store seeded from a JSON file of repo records; optional state file between runs",
        configuration: MockStore.Configuration.self
    ) { configuration, context in
        MockStore(configuration: configuration, directory: context.directory, logger: context.logger)
    }
}
