import ArgumentParser
import EmbedStarCore
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show how many repos are embedded, pending and failed."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        try await runCommand { logger in
            let runtime = try await options.runtime(logger: logger)
            try await runtime.store.prepare()
            let model = try await runtime.modelIdentity()
            let stats = try await runtime.store.stats(model: model)
            await runtime.store.shutdown()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(stats), as: UTF8.self))
            } else {
                print("""
                    model:    \(model)
                    total:    \(stats.total)
                    embedded: \(stats.embedded)
                    pending:  \(stats.pending) (\(stats.leased) being worked on)
                    failed:   \(stats.failed)
                    """)
            }
        }
    }
}

struct RetryFailedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry-failed",
        abstract: "Put repos marked failed back in the queue."
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await runCommand { logger in
            let runtime = try await options.runtime(logger: logger)
            try await runtime.store.prepare()
            let count = try await runtime.store.resetFailed()
            await runtime.store.shutdown()
            print("\(count) failed repos are pending again.")
        }
    }
}
