import ArgumentParser
import EmbedStarConfig
import EmbedStarBuiltInPlugins
import EmbedStarCore
import Foundation

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the configuration and print it as it takes effect, secrets hidden. Exits 2 if it is invalid."
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await runCommand { logger in
            let loaded: LoadedConfiguration
            do {
                loaded = try options.load()
                let unclaimed = try BuiltInPlugins.registry.validate(loaded)
                if !unclaimed.isEmpty {
                    let list = unclaimed.joined(separator: ", ")
                    FileHandle.standardError.write(Data("note: no built-in plugin for \(list); those sections are not checked\n".utf8))
                }
            } catch let error as ConfigError {
                throw CLIError.configuration(error)
            }
            print("# \(options.path)", terminator: "\n")
            print(ConfigRendering.render(loaded), terminator: "")
        }
    }
}

struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List the registered embedding providers and stores."
    )

    @Flag(name: .shortAndLong, help: "Also list each plugin's configuration keys: type, default, required, secret.")
    var verbose = false

    func run() async throws {
        let registry = BuiltInPlugins.registry
        print("providers:")
        for factory in registry.providers.values.sorted(by: { $0.name < $1.name }) {
            show(factory.name, factory.summary, section: "providers", factory.keys)
        }
        print("stores:")
        for factory in registry.stores.values.sorted(by: { $0.name < $1.name }) {
            show(factory.name, factory.summary, section: "stores", factory.keys)
        }
    }

    private func show(_ name: String, _ summary: String, section: String, _ keys: () -> [ConfigKeyInfo]) {
        print("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(summary)")
        guard verbose else { return }
        let entries = keys()
        print("      \(section).\(name):" + (entries.isEmpty ? " (no keys)" : ""))
        let width = max(24, (entries.map(\.name.count).max() ?? 0) + 2)
        for key in entries {
            var notes: [String] = []
            if key.required {
                notes.append("required")
            } else {
                notes.append(key.defaultValue.map { "default \($0)" } ?? "no default")
            }
            if key.secret { notes.append("secret") }
            print("        \(key.name.padding(toLength: width, withPad: " ", startingAt: 0))\(key.type.padding(toLength: 9, withPad: " ", startingAt: 0)) \(notes.joined(separator: ", "))")
        }
    }
}
