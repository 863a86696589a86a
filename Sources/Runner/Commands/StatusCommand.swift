import EmbedStarApp
import ArgumentParser
import EmbedStarConfig
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
            let (model, stats, coverage, lexical) = try await options.withRuntime(logger: logger) { runtime in
                let schema = try await runtime.openStore()
                let model = await runtime.statusModel(schema)
                // Counts of the words, not needed for the rest: an error is shown, not fatal.
                let lexical: Result<LexicalStatus, any Error>
                do { lexical = .success(try await runtime.store.lexicalStatus()) } catch { lexical = .failure(error) }
                return (model, try await runtime.store.stats(modelIdentity: model.identity ?? ""), try await runtime.store.coverage(), lexical)
            }
            if json {
                struct Report: Encodable {
                    var model: String
                    /// Where the model came from: "configuration" (the provider answered), "store"
                    /// (the provider did not; what the store last served) or "none".
                    var modelSource: String
                    var total, embedded, pending, failed, leased: Int
                    /// Repos carrying a vector, by the model identity that made it.
                    var coverage: [String: Int]
                    /// Lexical search: `state` (ready, filling, building, unavailable, or error:
                    /// the store could not say),
                    /// the repos whose words are held, changes waiting, and why it is not ready.
                    var lexical: Lexical

                    struct Lexical: Encodable {
                        var state: String
                        var indexed, waiting: Int?
                        var detail: String?
                    }

                    enum CodingKeys: String, CodingKey {
                        case model, modelSource = "model_source", total, embedded, pending, failed, leased, coverage, lexical
                    }
                }
                let words = switch lexical {
                case .success(let status): Report.Lexical(state: status.state.rawValue, indexed: status.indexed, waiting: status.waiting, detail: status.detail)
                case .failure(let error): Report.Lexical(state: "error", detail: ConfigRendering.redactURLPasswords(in: "\(error)"))
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let report = Report(model: model.identity ?? "", modelSource: model.source, total: stats.total, embedded: stats.embedded, pending: stats.pending,
                                    failed: stats.failed, leased: stats.leased, coverage: coverage, lexical: words)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                let lexicalLine = switch lexical {
                case .success(let status): status.line
                case .failure(let error): "error: \(ConfigRendering.redactURLPasswords(in: "\(error)"))"
                }
                print("""
                    model:    \(model.line)
                    total:    \(stats.total)
                    embedded: \(stats.embedded)
                    pending:  \(stats.pending) (\(stats.leased) being worked on)
                    failed:   \(stats.failed)
                    lexical:  \(lexicalLine)
                    """)
                // During a model change: how far each model's vectors reach.
                if coverage.keys.contains(where: { $0 != model.identity }) {
                    print("vectors by model:")
                    for (name, count) in coverage.sorted(by: { $0.value > $1.value }) {
                        let share = stats.total > 0 ? Double(count) * 100 / Double(stats.total) : 0
                        print("  \(name)\(name == model.identity ? " (current)" : ""): \(count) (\(String(format: "%.1f", share))%)")
                    }
                }
            }
        }
    }
}
